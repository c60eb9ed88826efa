"""The two ways to run a trained intent model's network: eager torch (the weights as trained)
and ONNX Runtime (the export that ``nlu.export`` chose, several times faster on a CPU).

Each backend gives the same forward function, ``forward(ids, mask) -> (logits, embedding)``,
so :class:`nlu.classifier.IntentClassifier` never needs to know which one runs. This module
imports the model format only; the classifier imports it, and the export imports both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.onnx import cpu_session
from nlu.memory import ExampleMemory
from nlu.model import ModelMeta, read_meta

ONNX_FILE = "model.onnx"
QUANTIZED_FILE = "model.int8.onnx"
SERVING_FILE = "model.fast.onnx"  # whichever of the two the export chose; what serving loads

Forward = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, "np.ndarray | None"]]


@dataclass
class Backend:
    """What a classifier needs from a loaded model folder."""

    meta: ModelMeta
    forward: Forward
    tokenizer: Any
    memory: ExampleMemory | None = None  # loaded from the folder when None and needed


def serving_path(model_dir: Path) -> Path:
    return Path(model_dir) / SERVING_FILE


def torch_backend(path: Path, device: str = "cpu", threads: int | None = None) -> Backend:
    import torch

    from nlu.model import load

    if threads:
        torch.set_num_threads(threads)
    loaded = load(path, device)

    def forward(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            embedded = loaded.model.embed(torch.from_numpy(ids).to(device),
                                          torch.from_numpy(mask).to(device))
            logits = loaded.model.head(embedded)
        return logits.float().cpu().numpy(), embedded.float().cpu().numpy()

    return Backend(loaded.meta, forward, loaded.tokenizer, loaded.memory)


def onnx_backend(model_dir: Path, file_name: str = SERVING_FILE,
                 threads: int | None = None) -> Backend:
    from transformers import AutoTokenizer

    path = Path(model_dir) / file_name
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run nlu.export.export_onnx({model_dir}) first")
    session = cpu_session(path, threads)
    meta = read_meta(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    outputs = [o.name for o in session.get_outputs()]
    if "embedding" not in outputs and (meta.calibration.knn_weight > 0
                                       or meta.calibration.oos_scorer):
        raise ValueError(f"{path} has no embedding output for the example memory: export again")

    def forward(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        values = session.run(outputs, {"input_ids": ids, "attention_mask": mask})
        named = dict(zip(outputs, values, strict=True))
        return named["logits"], named.get("embedding")

    return Backend(meta, forward, tokenizer)
