#!/usr/bin/env bash
# Creates or refreshes the test-only tools environment (schemathesis, Locust) from
# requirements/tools-lock.txt. It is apart from the product's environment because these tools
# do not resolve beside Rasa's pins; any Python >= 3.10 will do (python3 on these machines).
#   usage: scripts/setup_tools.sh [TOOLS_VENV_DIR]     (default: .venv-tools in the repository)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${1:-$root/.venv-tools}
lock="$root/requirements/tools-lock.txt"
python=${HELPDESK_TOOLS_PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
    echo "Creating the test tools environment in $venv with $python"
    "$python" -m venv "$venv"
fi
want=$(sha256sum "$lock" | cut -d' ' -f1)
stamp="$venv/.lepton-lock-sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing the test tools (schemathesis, Locust)..."
    "$venv/bin/python" -m pip install --quiet --upgrade "pip<25"
    "$venv/bin/python" -m pip install --quiet -r "$lock"
    "$venv/bin/python" -m pip check
    echo "$want" > "$stamp"
fi
