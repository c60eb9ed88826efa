"""Where benchmarks write, and merging one part's figures into ``bench/results/<name>.json``.

Each part of a benchmark runs on its own (some take hours), so a run replaces only its part,
stamped with the date and the machine, and the file is replaced atomically. A ``--smoke`` run
(tiny sizes, to prove a script still works end to end) writes under ``results/smoke/``
(git-ignored), so it never overwrites the recorded figures.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def results_dir(smoke: bool = False) -> Path:
    path = RESULTS / "smoke" if smoke else RESULTS
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, figures: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def merge(name: str, part: str, figures: dict, smoke: bool = False) -> dict:
    """Write ``figures`` as ``part`` of ``<results>/<name>.json``; returns the merged results."""
    path = results_dir(smoke) / f"{name}.json"
    merged = json.loads(path.read_text()) if path.is_file() else {}
    merged[part] = {**figures, "date": time.strftime("%Y-%m-%d %H:%M"),
                    "machine": {"cpus": os.cpu_count()}}
    write_json(path, merged)
    return merged


def add_smoke_flag(parser: object) -> None:
    """``--smoke``: the script's smallest run (about a minute), into ``results/smoke/``."""
    parser.add_argument(  # type: ignore[attr-defined]
        "--smoke", action="store_true",
        help="the smallest run, to check the script works; writes under results/smoke/")
