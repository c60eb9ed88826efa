"""Merging one benchmark part's figures into ``bench/results/<name>.json``.

Each part of a benchmark runs on its own (some take hours), so a run replaces only its part,
stamped with the date and the machine, and the file is replaced atomically.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def merge(name: str, part: str, figures: dict) -> dict:
    """Write ``figures`` as ``part`` of ``results/<name>.json``; returns the merged results."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    merged = json.loads(path.read_text()) if path.is_file() else {}
    merged[part] = {**figures, "date": time.strftime("%Y-%m-%d %H:%M"),
                    "machine": {"cpus": os.cpu_count()}}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return merged
