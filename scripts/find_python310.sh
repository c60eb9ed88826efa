#!/usr/bin/env bash
# Prints a Python 3.10 interpreter (Rasa 3.6 supports 3.8-3.10 only): $PYTHON310, python3.10 on
# the PATH, under pyenv, or in /usr; exits 1 when there is none. Sourced by setup.sh, run by
# `make lock`.
find_python310() {
    local candidates=("${PYTHON310:-}" python3.10)
    if command -v pyenv >/dev/null 2>&1; then
        candidates+=("$(pyenv root)"/versions/3.10*/bin/python3.10)
    fi
    candidates+=(/usr/local/bin/python3.10 /usr/bin/python3.10)
    for candidate in "${candidates[@]}"; do
        [ -n "$candidate" ] || continue
        if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
            command -v "$candidate" || echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    find_python310
fi
