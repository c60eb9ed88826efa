"""The sentence encoder: normalised sentence-transformers embeddings, batched and cached.

Vectors are L2-normalised so that FAISS's inner product is the cosine similarity. On a CPU the
model runs in ONNX Runtime: its fp32 export (``retrieval/onnx_encoder.py``) gives the vectors
of the eager model to within rounding, so stored vectors, cache entries and thresholds stay
valid, at a fraction of the CPU time per question. Several
models can serve as one (``EnsembleEncoder``): two encoders tuned differently make different
mistakes, and the mean of their cosines finds more right answers than either (see
``bench/results/retrieval.md``), at the price of encoding each question once per model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from common.files import weights_fingerprint
from retrieval.cache import EmbeddingCache, text_key

logger = logging.getLogger(__name__)

MAX_CHARS = 2000  # longer texts are cut before tokenising: the model reads 256 tokens anyway


def clean_text(text: str) -> str:
    """What the model sees: control characters as spaces, squeezed, at most ``MAX_CHARS``."""
    text = "".join(ch if ch.isprintable() else " " for ch in text[: MAX_CHARS * 2])
    return " ".join(text.split())[:MAX_CHARS]


class SentenceModel(Protocol):
    """The part of sentence-transformers' model the encoder uses; the ONNX model has it too."""

    def get_embedding_dimension(self) -> int | None: ...

    def encode(self, sentences: list[str], batch_size: int, normalize_embeddings: bool,
               convert_to_numpy: bool, show_progress_bar: bool) -> Any: ...


class TextEncoder(Protocol):
    """What the retriever needs from an encoder: one model or several as one."""

    model_name: str
    model_id: str  # changes with the weights: snapshots and cache keys are checked against it
    dim: int

    @property
    def encoded(self) -> int: ...

    def encode(self, texts: Sequence[str], progress: bool = False, cache: bool = True,
               urgent: bool = False) -> np.ndarray: ...


class Encoder:
    """Encodes texts with one sentence-transformers model, through an optional cache.

    One model serves both kinds of work: a customer's question (``urgent``: a search waits
    for it) and the re-encoding of answers that changed, which can be thousands of texts after
    an import. The second runs a batch at a time and lets every waiting question go first, so
    a large change never holds a search up for more than the batch being encoded.
    """

    def __init__(
        self, model: str, cache_path: Path | None = None, device: str | None = None,
        batch_size: int = 64, export_dir: Path | None = None,
    ) -> None:
        """``export_dir``: where the model's ONNX export is kept (made there on first use);
        None runs the eager model (sentence-transformers on ``device``)."""
        self.model_name = model
        self.model_id = weights_fingerprint(model)
        self._model: SentenceModel
        self.runtime = "onnx" if export_dir is not None and device in (None, "cpu") else "torch"
        if self.runtime == "onnx":
            from retrieval.onnx_encoder import OnnxSentenceModel, export_folder

            assert export_dir is not None
            self._model = OnnxSentenceModel.load(model, export_folder(export_dir, self.model_id))
        else:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(model, device=device)
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._urgent_waiting = 0
        self._no_urgent = threading.Condition(threading.Lock())
        self.cache = EmbeddingCache(cache_path, self.dim) if cache_path else None
        self.encoded = 0  # texts actually run through the model (not served from the cache)

    def _model_encode(self, texts: list[str], progress: bool) -> np.ndarray:
        with self._lock:
            vectors = self._model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=progress,
            )
            self.encoded += len(texts)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def _run(self, texts: list[str], progress: bool, urgent: bool = False) -> np.ndarray:
        if urgent:
            with self._no_urgent:
                self._urgent_waiting += 1
            try:
                return self._model_encode(texts, progress)
            finally:
                with self._no_urgent:
                    self._urgent_waiting -= 1
                    self._no_urgent.notify_all()
        # Longest first, as sentence-transformers orders one call's texts: each batch then
        # pads to texts of about its own length, so batching it ourselves costs no speed.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            with self._no_urgent:  # questions first: wait while any is queued
                self._no_urgent.wait_for(lambda: self._urgent_waiting == 0, timeout=5)
            chunk = order[start:start + self.batch_size]
            out[chunk] = self._model_encode([texts[i] for i in chunk], progress and start == 0)
        return out

    def encode(self, texts: Sequence[str], progress: bool = False, cache: bool = True,
               urgent: bool = False) -> np.ndarray:
        """One normalised float32 row per text; empty texts give a zero vector.

        ``cache=False`` for customers' questions: caching them would write to disk on every
        search and keep growing with traffic, for texts that rarely come back. ``urgent`` for
        a search's question: it goes before any answers being re-encoded.
        """
        cleaned = [clean_text(t) for t in texts]
        out = np.zeros((len(cleaned), self.dim), dtype=np.float32)
        wanted = {i: t for i, t in enumerate(cleaned) if t}
        if not wanted:
            return out
        keys = {i: text_key(self.model_id, t) for i, t in wanted.items()}
        store = self.cache if cache else None
        cached = store.get_many(sorted(set(keys.values()))) if store is not None else {}
        missing = sorted({t for i, t in wanted.items() if keys[i] not in cached})
        if missing:
            fresh = dict(zip(missing, self._run(missing, progress, urgent), strict=True))
            if store is not None:
                store.put_many({text_key(self.model_id, t): v for t, v in fresh.items()})
            cached.update({text_key(self.model_id, t): v for t, v in fresh.items()})
        for i in wanted:
            out[i] = cached[keys[i]]
        return out


class EnsembleEncoder:
    """Several encoders as one: a text's vector is its members' unit vectors side by side,
    scaled by ``1 / sqrt(n)``.

    The inner product of two such vectors is the mean of the members' cosines, and the vector
    is still a unit vector (or zero for an empty text), so the index, the support weight and
    the thresholds work unchanged. Each member keeps its own cache keys: an ensemble that
    gains or loses a member re-encodes only for the new one.
    """

    def __init__(self, members: Sequence[Encoder]) -> None:
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two encoders")
        self.members = list(members)
        self.model_name = " + ".join(m.model_name for m in self.members)
        self.model_id = "+".join(m.model_id for m in self.members)
        self.dim = sum(m.dim for m in self.members)
        self._scale = np.float32(1 / np.sqrt(len(self.members)))

    @property
    def encoded(self) -> int:
        return sum(m.encoded for m in self.members)

    def encode(self, texts: Sequence[str], progress: bool = False, cache: bool = True,
               urgent: bool = False) -> np.ndarray:
        parts = [m.encode(texts, progress=progress, cache=cache, urgent=urgent)
                 for m in self.members]
        return np.hstack(parts) * self._scale


def load_encoder(models: Sequence[str], cache_path: Path | None = None,
                 device: str | None = None, onnx: bool = True) -> TextEncoder:
    """One encoder per model, as an ensemble when there are several; ``ValueError`` names a
    model that cannot be loaded.

    With ``onnx`` (and a ``cache_path`` to keep the export beside), each model runs in ONNX
    Runtime on a CPU; the first load of a model exports it, later loads reuse the file.
    """
    if not models:
        raise ValueError("no encoder model given")
    export_dir = cache_path.parent / "encoders" if onnx and cache_path is not None else None
    members = []
    for model in models:
        try:
            members.append(Encoder(model, cache_path=cache_path, device=device,
                                   export_dir=export_dir))
        except OSError as error:  # a missing folder, or a hub name with no hub to reach
            raise ValueError(f"cannot load the encoder model {model!r}: {error}") from error
    if len(members) == 1:
        return members[0]
    logger.info("retriever encoder: an ensemble of %d models (%s)", len(members),
                ", ".join(m.model_id for m in members))
    return EnsembleEncoder(members)
