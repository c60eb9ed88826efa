"""ONNX Runtime sessions for the CPU, set up once for the intent model and the sentence encoder.

Both run in processes that share two cores with Rasa or the action server's event loop, so a
session uses at most two intra-op threads and never spins: idle intra-op threads otherwise
busy-wait for a while after each call, stealing the cores from whatever runs next.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def cpu_session(path: Path, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``path`` on the CPU, fully optimised."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
