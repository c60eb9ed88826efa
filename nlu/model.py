"""The intent model: a BERT-family encoder, mean pooling, and a linear classification head.

Mean pooling rather than the [CLS] pooler: the default checkpoint (all-MiniLM-L6-v2) was
trained for mean-pooled sentence embeddings, so its pooled vector is already a good feature
and the head can start from a linear probe on it (see ``training.py``).

On disk (``save`` / ``IntentModel.load``), sentence-transformers style, one folder:
- ``config.json``, ``model.safetensors``, tokenizer files: the encoder, ``save_pretrained`` layout;
- ``head.safetensors``: the classification head;
- ``intent_model.json``: labels, max length, calibration (temperature, out-of-scope threshold,
  the example memory's blend, the learned out-of-scope score) and the training parameters;
- ``memory.safetensors``: the example memory (``nlu/memory.py``), when the blend or the
  out-of-scope score uses it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from common.files import staged_dir, write_atomic
from nlu.memory import Blend, ExampleMemory

# Loading a sentence-transformers checkpoint as a bare encoder reports harmless unexpected
# keys (position_ids) on every load; keep the operators' logs for real problems.
hf_logging.set_verbosity_error()

META_FILE = "intent_model.json"
HEAD_FILE = "head.safetensors"
FORMAT_VERSION = 1


@dataclass
class Calibration:
    """Temperature for the logits, the example memory's blend, and the out-of-scope rule: a
    message is out of scope under ``oos_threshold`` of its in-scope score, which is the
    blended top confidence, or the learned score of ``nlu/oos.py`` when ``oos_scorer`` holds
    one. Files written before the memory or the scorer existed load with weight 0 and no
    scorer: the head and the confidence rule alone, as they were trained."""

    temperature: float = 1.0
    oos_threshold: float = 0.0
    oos_intent: str | None = None
    knn_weight: float = 0.0
    knn_k: int = 10
    knn_temperature: float = 0.05
    oos_scorer: dict[str, object] | None = None  # nlu.oos.OosScorer.to_dict()

    def blend(self) -> Blend:
        return Blend(self.knn_weight, self.knn_k, self.knn_temperature)

    def confidence_threshold(self) -> float:
        """Where the threshold stands on the confidence scale, which is what rescaling the
        ranking for Rasa maps to its fallback threshold: nowhere (0) under a learned score."""
        return 0.0 if self.oos_scorer else self.oos_threshold


@dataclass
class ModelMeta:
    labels: list[str]
    max_length: int = 64
    calibration: Calibration = field(default_factory=Calibration)
    base_model: str = ""
    train_params: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    fast_format: str | None = None  # "int8" or "fp32" once nlu.export.export_onnx chose
    # ``common.files.weights_fingerprint`` of the base checkpoint when training left its
    # encoder untouched (probe only): the pooled embeddings are then that checkpoint's
    # sentence vectors, which a retriever on the same weights can use instead of encoding
    # the text again. Empty when the encoder was fine-tuned (its vectors are its own).
    encoder_id: str = ""
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        raw = json.loads(text)
        if raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported intent model format {raw.get('format_version')}")
        raw["calibration"] = Calibration(**raw.get("calibration", {}))
        return cls(**raw)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class IntentModel(nn.Module):
    """Encoder + mean pooling + dropout + linear head, returning logits."""

    def __init__(self, encoder: Any, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_labels)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        output = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return mean_pool(output.last_hidden_state, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(input_ids, attention_mask)))

    @classmethod
    def from_base(cls, base: str, num_labels: int, dropout: float = 0.1) -> IntentModel:
        encoder = AutoModel.from_pretrained(base)
        return cls(encoder, num_labels, dropout)


@dataclass
class LoadedModel:
    model: IntentModel
    tokenizer: PreTrainedTokenizerBase
    meta: ModelMeta
    path: Path
    memory: ExampleMemory | None = None


def save(model: IntentModel, tokenizer: PreTrainedTokenizerBase, meta: ModelMeta,
         path: Path, memory: ExampleMemory | None = None) -> Path:
    """Write the model folder atomically: a temporary sibling folder, then a rename."""
    path = Path(path).resolve()
    with staged_dir(path) as staging:
        model.encoder.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        head = {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
        save_file(head, str(staging / HEAD_FILE))
        if memory is not None:
            memory.save(staging)
        write_meta(staging, meta)
    return path


def read_meta(path: Path | str) -> ModelMeta:
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} is not an intent model folder (no {META_FILE})")
    return ModelMeta.from_json(meta_path.read_text(encoding="utf-8"))


def write_meta(path: Path | str, meta: ModelMeta) -> None:
    """The one writer of ``intent_model.json`` (atomically: readers load models while the
    export records its choice)."""
    write_atomic(Path(path) / META_FILE, meta.to_json() + "\n")


def load(path: Path | str, device: str = "cpu") -> LoadedModel:
    """Reload a saved intent model with one call."""
    path = Path(path)
    meta = read_meta(path)
    encoder = AutoModel.from_pretrained(path)
    model = IntentModel(encoder, len(meta.labels), dropout=0.0)
    model.head.load_state_dict(load_file(str(path / HEAD_FILE)))
    model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return LoadedModel(model, tokenizer, meta, path, ExampleMemory.load(path, len(meta.labels)))
