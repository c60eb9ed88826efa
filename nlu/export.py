"""Fast CPU inference: the intent model exported to ONNX, int8-quantised when that is safe.

``export`` writes the fp32 graph (identical predictions) and tries a dynamic int8 version
(per-channel weights). The int8 graph serves only if, on the validation set, it loses at most
``max_accuracy_drop`` against the full model; otherwise fp32 serves: quantisation error is
model-specific, so the choice is measured rather than assumed. The decision and both
accuracies are recorded in the model's meta (``metrics``); the speeds are in
``bench/results/``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from nlu import backends
from nlu.backends import ONNX_FILE, QUANTIZED_FILE, serving_path
from nlu.classifier import IntentClassifier
from nlu.model import read_meta, write_meta

MAX_ACCURACY_DROP = 0.003  # 0.3 points


def _export_fp32(model_dir: Path, target: Path) -> None:
    import torch

    from nlu.model import load

    loaded = load(model_dir)
    model = loaded.model.eval()

    class LogitsAndEmbedding(torch.nn.Module):  # the example memory needs the embedding too
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            embedded = self.model.embed(input_ids, attention_mask)
            return self.model.head(embedded), embedded

    sample = loaded.tokenizer(["a sample question", "another, longer sample question"],
                              padding=True, return_tensors="pt")
    torch.onnx.export(
        LogitsAndEmbedding().eval(),
        (sample["input_ids"], sample["attention_mask"]),
        str(target),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits", "embedding"],
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                      "attention_mask": {0: "batch", 1: "sequence"},
                      "logits": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def _accuracy(classifier: IntentClassifier, texts: Sequence[str], labels: Sequence[str]) -> float:
    predictions = classifier.predict_batch(list(texts))
    return float(np.mean([p.intent == y for p, y in zip(predictions, labels, strict=True)]))


def export_onnx(model_dir: Path, validation: tuple[Sequence[str], Sequence[str]] | None = None,
           max_accuracy_drop: float = MAX_ACCURACY_DROP) -> Path:
    """Export, choose int8 or fp32 on validation data, and return the serving file."""
    from onnxruntime.quantization import QuantType, quantize_dynamic


    model_dir = Path(model_dir)
    with tempfile.TemporaryDirectory(dir=model_dir) as tmp:
        full, small = Path(tmp) / ONNX_FILE, Path(tmp) / QUANTIZED_FILE
        _export_fp32(model_dir, full)
        quantize_dynamic(str(full), str(small), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(full, model_dir / ONNX_FILE)
        os.replace(small, model_dir / QUANTIZED_FILE)
    chosen, report = ONNX_FILE, {"fast_format": "fp32"}
    accuracies: dict[str, float] = {}
    texts, labels = validation or ([], [])
    if texts:
        reference = _accuracy(IntentClassifier.load(model_dir, backend="torch"), texts, labels)
        quantized = _accuracy(IntentClassifier.from_backend(
            model_dir, backends.onnx_backend(model_dir, QUANTIZED_FILE)), texts, labels)
        accuracies = {"val_accuracy_full": reference, "val_accuracy_int8": quantized}
        if reference - quantized <= max_accuracy_drop:
            chosen = QUANTIZED_FILE
        report["fast_format"] = "int8" if chosen == QUANTIZED_FILE else "fp32"
    os.replace(model_dir / chosen, serving_path(model_dir))
    for leftover in (ONNX_FILE, QUANTIZED_FILE):
        (model_dir / leftover).unlink(missing_ok=True)
    meta = read_meta(model_dir)
    write_meta(model_dir, replace(meta, metrics={**meta.metrics, **accuracies},
                                  fast_format=report["fast_format"]))
    return serving_path(model_dir)


def prune_for_serving(model_dir: Path) -> None:
    """Drop the torch weights, keeping what serving needs (the ONNX model, tokenizer, meta).

    The pruned folder still loads with ``IntentClassifier.load`` (ONNX backend); retraining
    starts from the base checkpoint, never from a served model, so nothing is lost.
    """
    if not serving_path(model_dir).is_file():
        raise FileNotFoundError(f"{serving_path(model_dir)} missing: export before pruning")
    (Path(model_dir) / "model.safetensors").unlink(missing_ok=True)
