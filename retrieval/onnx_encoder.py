"""A sentence-transformers model served by ONNX Runtime: the retriever's encoder on a CPU.

Eager torch spends most of a short question's time in framework overhead; the same graph in
ONNX Runtime costs a fraction of it. The export is fp32 and includes the model's own pooling
(and normalisation, when the model has it), so its vectors equal the eager model's to within
rounding: the stored answer vectors, the embedding cache and the calibrated thresholds stay
valid. (An int8 export would be faster still, but moves scores enough to need thresholds
chosen again on validation data.)

The export is made once per model (keyed by the weights' fingerprint) into a folder that
also holds the tokenizer and the tokenisation settings, so serving needs neither torch nor
sentence-transformers. It is written to a temporary folder and renamed, so two processes
exporting at once, or one interrupted, never leave a half-written model behind.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from common.onnx import cpu_session

logger = logging.getLogger(__name__)

GRAPH_FILE = "model.onnx"
SETTINGS_FILE = "encoder.json"


def export_folder(export_dir: Path, model_id: str) -> Path:
    """Where a model's export lives: one folder per weights fingerprint."""
    return Path(export_dir) / re.sub(r"[^A-Za-z0-9._-]+", "-", model_id)


def export(model: str, target: Path) -> Path:
    """Export ``model`` (a sentence-transformers folder or name) to the folder ``target``."""
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model, device="cpu").eval()

    class Embedding(torch.nn.Module):
        """The whole sentence-transformers pipeline after tokenisation, pooling included."""

        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            return self.st(features)["sentence_embedding"]

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        sample = st.tokenizer(["a sample question", "another, longer sample question"],
                              padding=True, return_tensors="pt")
        torch.onnx.export(
            Embedding().eval(), (sample["input_ids"], sample["attention_mask"]),
            str(staging / GRAPH_FILE),
            input_names=["input_ids", "attention_mask"], output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                          "attention_mask": {0: "batch", 1: "sequence"},
                          "embedding": {0: "batch"}},
            opset_version=17, dynamo=False,
        )
        st.tokenizer.save_pretrained(str(staging))
        first = st[0]
        settings = {"model": model, "max_seq_length": int(st.max_seq_length or 512),
                    "do_lower_case": bool(getattr(first, "do_lower_case", False)),
                    "dim": int(st.get_embedding_dimension() or 0)}
        (staging / SETTINGS_FILE).write_text(json.dumps(settings, indent=1))
        try:
            os.rename(staging, target)
        except OSError:  # another process finished the same export first: keep its copy
            if not (target / SETTINGS_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class OnnxSentenceModel:
    """The two calls of ``SentenceTransformer`` that ``retrieval.encoder.Encoder`` makes."""

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        from transformers import AutoTokenizer

        settings = json.loads((folder / SETTINGS_FILE).read_text())
        self._max_length = int(settings["max_seq_length"])
        self._lower = bool(settings["do_lower_case"])
        self._dim = int(settings["dim"])
        self._tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self._session = cpu_session(folder / GRAPH_FILE, threads)

    @classmethod
    def load(cls, model: str, folder: Path, threads: int | None = None) -> OnnxSentenceModel:
        """The export in ``folder``, made first when it is not there yet."""
        if not (folder / SETTINGS_FILE).is_file():
            logger.info("exporting the sentence encoder %s to ONNX (once per model)", model)
            export(model, folder)
        return cls(folder, threads)

    def get_embedding_dimension(self) -> int:
        return self._dim

    def encode(self, sentences: list[str], batch_size: int = 32,
               normalize_embeddings: bool = True, convert_to_numpy: bool = True,
               show_progress_bar: bool = False) -> np.ndarray:
        """One row per sentence, in order; batches of similar lengths, as sentence-transformers
        forms them, so that little of each batch is padding."""
        texts = [s.strip().lower() if self._lower else s.strip() for s in sentences]
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            out[chunk] = self._run([texts[i] for i in chunk])
        if normalize_embeddings:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.maximum(norms, 1e-12)
        return out

    def _run(self, texts: list[str]) -> Any:
        encoded = self._tokenizer(texts, padding=True, truncation="longest_first",
                                  max_length=self._max_length, return_tensors="np")
        feed = {"input_ids": encoded["input_ids"].astype(np.int64),
                "attention_mask": encoded["attention_mask"].astype(np.int64)}
        return self._session.run(["embedding"], feed)[0]
