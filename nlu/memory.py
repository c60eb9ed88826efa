"""Example memory: a nearest-neighbour vote over the training examples, blended with the head.

The fine-tuned encoder already places a message near the training examples of its intent; a
vote among its ``k`` most similar examples errs on different messages than the linear head
(which sees only the pooled vector through one hyperplane per intent), so a blend of the two
is better than either (``bench/intent.py`` measures all three). The memory costs one matrix
product per message (training examples x embedding size) on top of the forward pass the head
needs anyway.

The blend is ``(1 - weight) * head + weight * vote``, with ``k``, the vote's temperature and
the weight chosen on validation data by negative log-likelihood (a proper scoring rule: less
noisy than accuracy on a thousand messages, and it keeps the blend calibrated), the memory
then holding the training examples only. ``weight`` 0 (tiny data, or no gain) is the head alone.

On disk: ``memory.safetensors`` in the model folder, the examples' unit-length embeddings
(float16) and their label indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MEMORY_FILE = "memory.safetensors"
K_GRID = (5, 10, 20, 40)
TEMPERATURE_GRID = (0.02, 0.05, 0.1)
WEIGHT_GRID = tuple(round(0.1 * i, 1) for i in range(11))
MIN_VALIDATION = 50  # below this, nothing is learned about the blend: the head alone


@dataclass(frozen=True)
class Blend:
    weight: float = 0.0
    k: int = 10
    temperature: float = 0.05


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class ExampleMemory:
    """Unit-length example embeddings and their label indices."""

    def __init__(self, embeddings: np.ndarray, label_ids: np.ndarray, num_labels: int) -> None:
        if len(embeddings) != len(label_ids):
            raise ValueError("one label per embedding is required")
        self.embeddings = normalise(embeddings)
        self.label_ids = np.asarray(label_ids, dtype=np.int64)
        self.num_labels = num_labels

    def vote(self, queries: np.ndarray, k: int, temperature: float) -> np.ndarray:
        """Per-label shares of the ``k`` nearest examples, weighted by exp(similarity / T)."""
        return self._vote(*self._neighbours(queries, k), temperature)

    def _neighbours(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Similarities and labels of the ``k`` nearest examples, nearest first."""
        k = max(1, min(k, len(self.label_ids)))
        similarity = normalise(queries) @ self.embeddings.T
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        near_sim = np.take_along_axis(similarity, nearest, axis=1)
        order = np.argsort(-near_sim, axis=1)
        return (np.take_along_axis(near_sim, order, axis=1),
                self.label_ids[np.take_along_axis(nearest, order, axis=1)])

    def _vote(self, near_sim: np.ndarray, near_labels: np.ndarray,
              temperature: float) -> np.ndarray:
        rows, k = near_sim.shape
        weights = np.exp((near_sim - near_sim.max(axis=1, keepdims=True)) / temperature)
        votes = np.zeros((rows, self.num_labels))
        np.add.at(votes, (np.repeat(np.arange(rows), k), near_labels.ravel()), weights.ravel())
        return votes / votes.sum(axis=1, keepdims=True)

    def blend(self, head: np.ndarray, queries: np.ndarray, blend: Blend) -> np.ndarray:
        if blend.weight <= 0.0 or len(queries) == 0:
            return head
        return (1.0 - blend.weight) * head + blend.weight * self.vote(
            queries, blend.k, blend.temperature)

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"embeddings": self.embeddings.astype(np.float16),
                   "label_ids": self.label_ids.astype(np.int32)}, str(Path(folder) / MEMORY_FILE))

    @classmethod
    def load(cls, folder: Path, num_labels: int) -> ExampleMemory | None:
        path = Path(folder) / MEMORY_FILE
        if not path.is_file():
            return None
        from safetensors.numpy import load_file

        tensors = load_file(str(path))
        return cls(tensors["embeddings"].astype(np.float32), tensors["label_ids"], num_labels)


def choose_blend(memory: ExampleMemory, head: np.ndarray, queries: np.ndarray,
                 truth: np.ndarray) -> Blend:
    """The blend with the lowest validation negative log-likelihood (ties: the smaller weight)."""
    truth = np.asarray(truth, dtype=np.int64)
    if len(truth) < MIN_VALIDATION or len(memory.label_ids) == 0:
        return Blend()
    rows = np.arange(len(truth))
    best, best_nll = Blend(), _nll(head, rows, truth)
    near_sim, near_labels = memory._neighbours(queries, max(K_GRID))  # once for the whole grid
    for k in K_GRID:
        for temperature in TEMPERATURE_GRID:
            vote = memory._vote(near_sim[:, :k], near_labels[:, :k], temperature)
            for weight in WEIGHT_GRID[1:]:
                nll = _nll((1.0 - weight) * head + weight * vote, rows, truth)
                if nll < best_nll - 1e-9:
                    best, best_nll = Blend(weight, k, temperature), nll
    return best


def _nll(probabilities: np.ndarray, rows: np.ndarray, truth: np.ndarray) -> float:
    return float(-np.log(np.clip(probabilities[rows, truth], 1e-9, 1.0)).mean())
