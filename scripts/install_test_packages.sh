#!/usr/bin/env bash
# Debian packages the tests drive: Chromium (the browser tests, through Playwright), promtool
# (from `prometheus`: checks the alerting rules) and HAProxy (the scaled profile's proxy). Installs what is missing when this
# machine can (root with apt-get); otherwise says how, and the tests that need it skip.
set -euo pipefail
missing=()
if ! command -v chromium >/dev/null 2>&1 && [ -z "${HELPDESK_CHROMIUM:-}" ]; then
    missing+=(chromium)
fi
if ! command -v promtool >/dev/null 2>&1; then
    missing+=(prometheus)
fi
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
    missing+=(haproxy)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's ${missing[*]} for the tests..."
    # The prometheus package would start its server where a service manager allows it; the
    # tests only need its promtool.
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq \
             "${missing[@]}" >/dev/null; }
else
    echo "Note: ${missing[*]} missing; the tests that need them will skip. Install with" >&2
    echo "  sudo apt-get install ${missing[*]}   (or set HELPDESK_CHROMIUM to a Chromium binary)" >&2
fi
