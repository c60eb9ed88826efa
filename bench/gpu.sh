#!/usr/bin/env bash
# The GPU tier's one short script (issue 31, part 5), for the GPU machine a session may borrow
# (the workplace's device tool: another Python, no model hub, a small upload, minutes in all).
#
#   here:   bash bench/gpu.sh prepare     # fp16 weights + a pydantic wheel into build/gpu-carry
#   there:  bash bench/gpu.sh run         # the device tool's command, carrying build/gpu-carry
#
# It trains the bank's classifier on CUDA (probe, then 5 fine-tuning epochs) and scores it on
# BANKING77's test split, and runs the FAISS GPU check and speed table when a FAISS with GPU
# support imports there. Results: $OUT/gpu.json there; copy it to bench/results/gpu.json.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=build/gpu-carry

case "${1:-run}" in
prepare)
    rm -rf "$CARRY"
    .venv/bin/python bench/gpu.py --pack "$CARRY/base"
    # Our settings use pydantic 1; that machine's Python is 3.12, so the pure-Python wheel.
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation py -d "$CARRY/wheels" "pydantic==1.10.21"
    du -sh "$CARRY"
    echo "Now run there, carrying $CARRY: bash bench/gpu.sh run"
    ;;
run)
    if [ ! -d "$CARRY/base" ]; then
        echo "$CARRY is missing: run 'bash bench/gpu.sh prepare' here and carry it" >&2
        exit 2
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/helpdesk-site \
        "$CARRY"/wheels/*.whl
    export PYTHONPATH="/tmp/helpdesk-site:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    python3 bench/gpu.py --weights "$CARRY/base" --out "${OUT:-bench/results}/gpu.json"
    ;;
*)
    echo "usage: bash bench/gpu.sh prepare|run" >&2
    exit 2
    ;;
esac
