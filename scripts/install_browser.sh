#!/usr/bin/env bash
# The browser tests drive Debian's Chromium with Playwright. Installs it when it is missing and
# this machine can (root with apt-get); otherwise says how, and the browser tests skip.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -n "${HELPDESK_CHROMIUM:-}" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's Chromium for the browser tests..."
    apt-get install -y -qq chromium >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
else
    echo "Note: Chromium is missing; the browser tests will skip. Install it with" >&2
    echo "  sudo apt-get install chromium   (or set HELPDESK_CHROMIUM to a Chromium binary)" >&2
fi
