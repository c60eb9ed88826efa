#!/usr/bin/env bash
# Creates or refreshes the project's virtual environment from requirements/lock.txt.
#   usage: scripts/setup.sh [VENV_DIR]     (default: .venv in the repository)
# Re-running is cheap: packages are installed only when the lock file changed, and the
# editable install is re-pointed when the clone moved (CI keeps the venv outside the clone).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${1:-$root/.venv}
lock="$root/requirements/lock.txt"

source "$(dirname "${BASH_SOURCE[0]}")/find_python310.sh"

if [ ! -x "$venv/bin/python" ]; then
    if ! python=$(find_python310); then
        cat >&2 <<'MSG'
Python 3.10 is required (Rasa 3.6, the bot's framework, supports Python 3.8-3.10 only) and
none was found. Install it, then run this again, for example:
  Debian/Ubuntu:  sudo apt-get install python3.10 python3.10-venv   (or use pyenv/deadsnakes)
  pyenv:          pyenv install 3.10
  macOS:          brew install python@3.10
Or point PYTHON310 at an existing python3.10 binary.
MSG
        exit 1
    fi
    echo "Creating the virtual environment in $venv with $python"
    "$python" -m venv "$venv"
fi

want=$(sha256sum "$lock" | cut -d' ' -f1)
stamp="$venv/.lepton-lock-sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing the locked dependencies (several GB the first time; about 5 minutes)..."
    "$venv/bin/python" -m pip install --quiet --upgrade "pip<25"
    # One resolver run over the frozen set (Rasa's pins included), then a consistency check.
    "$venv/bin/python" -m pip install --quiet -r "$lock"
    "$venv/bin/python" -m pip check
    rm -f "$stamp"
fi

# Ask from a neutral directory: `python -c` run here would find this checkout through the
# current directory and hide an editable install that still points at an older clone.
here=$(cd / && "$venv/bin/python" -c 'import helpdesk, os; print(os.path.dirname(list(helpdesk.__path__)[0]))' 2>/dev/null || true)
if [ "$here" != "$root" ] || [ ! -x "$venv/bin/helpdesk" ]; then
    "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$root"
fi
echo "$want" > "$stamp"

# The chat widget (bot/widget) and the console's browser code (admin_api/console/frontend):
# each bundled from its npm lock file whenever its sources change, into its git-ignored dist/
# that the admin API serves (/widget.js, /markdown.js, /console/assets/...).
if command -v npm >/dev/null 2>&1; then
    for bundle in "$root/bot/widget" "$root/admin_api/console/frontend"; do
        want_bundle=$(cat "$bundle/package-lock.json" "$bundle"/src/* | sha256sum | cut -d' ' -f1)
        if [ "$(cat "$bundle/dist/.stamp" 2>/dev/null)" != "$want_bundle" ]; then
            echo "Building $(basename "$(dirname "$bundle")")/$(basename "$bundle") (npm ci, then esbuild)..."
            (cd "$bundle" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
            echo "$want_bundle" > "$bundle/dist/.stamp"
        fi
    done
else
    echo "Note: npm was not found, so the chat widget and the console's scripts are not built;" >&2
    echo "install Node.js 20 with npm and run this again (the bot and the admin API work without it)." >&2
fi
