"""Using a trained intent model: ``IntentClassifier.load(path).predict(text)``.

The same API serves the Rasa component, the benchmarks and the retriever, on either backend:
- ``torch``: the saved network as trained;
- ``onnx``: the ONNX export chosen by ``nlu.export`` (int8 when that costs little accuracy
  on validation data, else fp32), several times faster on a CPU.

Both return the logits and the pooled embedding of a message; when the model keeps an example
memory (``nlu/memory.py``), its vote is blended into the calibrated head probabilities, and
when it learned an out-of-scope score (``nlu/oos.py``), that score decides what is out of scope.

Any text gets a prediction: empty, huge (truncated at the model's maximum length), emoji,
control characters or mixed scripts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlu import backends, oos
from nlu.memory import ExampleMemory
from nlu.model import ModelMeta

MAX_CHARS = 4_000  # far beyond max_length tokens; bounds the tokenizer's work on huge input


@dataclass(frozen=True)
class Prediction:
    intent: str
    confidence: float  # calibrated probability of ``intent``
    ranking: list[tuple[str, float]]  # best first, calibrated
    out_of_scope: bool  # predicted the OOS intent, or in_scope under the learned threshold
    # What the out-of-scope threshold reads (higher = more in scope): the confidence, or the
    # learned out-of-scope score when the model has one.
    in_scope: float
    # The pooled sentence embedding (None where the backend gives none), and whether the model
    # read the whole text (not cut at ``max_length`` tokens): a whole text's embedding from
    # an untouched base encoder is that encoder's sentence vector (``ModelMeta.encoder_id``).
    embedding: np.ndarray | None = None
    whole_text: bool = True


class IntentClassifier:
    """A loaded intent model; thread-safe for prediction."""

    _blend_memory = True  # False in ``head_only`` views

    def __init__(self, meta: ModelMeta, path: Path, forward_fn: backends.Forward, tokenizer: Any,
                 memory: ExampleMemory | None = None) -> None:
        """``forward_fn(ids, mask)`` returns the logits and the pooled embeddings (or None);
        ``memory`` is read from ``path`` when the caller has not loaded it already."""
        self.meta = meta
        self.path = path
        self.labels = meta.labels
        self._forward = forward_fn
        self._tokenizer = tokenizer
        calib = meta.calibration
        self._memory: ExampleMemory | None = None
        self._scorer: oos.OosScorer | None = None
        if calib.blend().weight > 0 or calib.oos_scorer:
            self._memory = (memory if memory is not None
                            else ExampleMemory.load(path, len(meta.labels)))
            if self._memory is None:
                raise FileNotFoundError(f"{path} uses an example memory but has none")
        if calib.oos_scorer:
            assert self._memory is not None and calib.oos_intent is not None
            self._scorer = oos.OosScorer.from_dict(calib.oos_scorer)
            self._oos_index = meta.labels.index(calib.oos_intent)
            self._reference = oos.Reference(self._memory.embeddings, self._memory.label_ids,
                                            self._oos_index)

    @classmethod
    def load(cls, path: Path | str, backend: str = "auto", threads: int | None = None,
             device: str = "cpu") -> IntentClassifier:
        """Load a model folder. ``auto`` uses the ONNX export when the folder has one."""
        path = Path(path)
        if backend == "auto":
            backend = "onnx" if backends.serving_path(path).is_file() else "torch"
        if backend == "onnx":
            return cls.from_backend(path, backends.onnx_backend(path, threads=threads))
        if backend != "torch":
            raise ValueError(f"unknown backend {backend!r}: use auto, torch or onnx")
        return cls.from_backend(path, backends.torch_backend(path, device, threads))

    @classmethod
    def from_backend(cls, path: Path, backend: backends.Backend) -> IntentClassifier:
        return cls(backend.meta, path, backend.forward, backend.tokenizer, backend.memory)

    def head_only(self) -> IntentClassifier:
        """The same model without its example memory's vote: what the vote adds is measured
        so (a learned out-of-scope score still reads the memory's distances)."""
        view = copy.copy(self)
        view._blend_memory = False
        return view

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        cleaned = [t[:MAX_CHARS] if isinstance(t, str) else "" for t in texts]
        encoded = self._tokenizer(cleaned, truncation=True, max_length=self.meta.max_length,
                                  padding=True, return_tensors="np")
        return (encoded["input_ids"].astype(np.int64),
                encoded["attention_mask"].astype(np.int64))

    def logits_and_embeddings(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """The head's raw logits and the pooled sentence embeddings (None where the backend
        has none): what out-of-scope scores other than the confidence are built from."""
        if not texts:
            raise ValueError("no texts to encode: give at least one")
        return self._forward(*self._encode(texts))

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Calibrated probabilities, one row per text (columns follow ``self.labels``)."""
        if not texts:
            return np.zeros((0, len(self.labels)))
        return self._scored(texts)[0]

    def _scored(self, texts: list[str]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """Probabilities, the in-scope score that the out-of-scope threshold reads, the
        pooled embeddings and whether each text was read whole."""
        ids, mask = self._encode(texts)
        logits, embedded = self._forward(ids, mask)
        whole = mask.sum(axis=1) < self.meta.max_length  # at the limit: maybe cut
        probs, in_scope = self._calibrated(logits, embedded)
        return probs, in_scope, embedded, whole

    def _calibrated(self, logits: np.ndarray, embedded: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray]:
        scaled = logits / self.meta.calibration.temperature
        exp = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        probs = exp / exp.sum(axis=1, keepdims=True)
        if self._memory is not None and embedded is not None and self._blend_memory:
            probs = self._memory.blend(probs, embedded, self.meta.calibration.blend())
        if self._scorer is None:
            return probs, probs.max(axis=1)
        if embedded is None:
            raise ValueError(f"{self.path}: this backend gives no embeddings, which the "
                             "out-of-scope score needs")
        values = oos.features(probs, scaled, embedded, self._reference, self._oos_index)
        return probs, self._scorer.score(values)

    def _prediction(self, row: np.ndarray, in_scope: float, top: int,
                    embedding: np.ndarray | None = None, whole_text: bool = True) -> Prediction:
        order = np.argsort(-row)[:top]
        ranking = [(self.labels[i], float(row[i])) for i in order]
        intent, confidence = ranking[0]
        calib = self.meta.calibration
        rejected = intent == calib.oos_intent or in_scope < calib.oos_threshold
        return Prediction(intent, confidence, ranking, rejected, float(in_scope), embedding,
                          bool(whole_text))

    def predict(self, text: str, top: int = 10) -> Prediction:
        return self.predict_batch([text], top=top)[0]

    def predict_batch(self, texts: list[str], batch_size: int = 64,
                      top: int = 10) -> list[Prediction]:
        """Predict many texts; sorted by length inside so batches carry little padding."""
        lengths = [len(t) if isinstance(t, str) else 0 for t in texts]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        results: list[Prediction | None] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start: start + batch_size]
            probs, in_scope, embedded, whole = self._scored([texts[i] for i in chunk])
            for j, (i, row, score) in enumerate(zip(chunk, probs, in_scope, strict=True)):
                results[i] = self._prediction(row, score, top,
                                              None if embedded is None else embedded[j], whole[j])
        return [r for r in results if r is not None]
