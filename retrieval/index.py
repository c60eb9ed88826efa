"""The FAISS vector index: cosine similarity, answer ids inside the FAISS ids, CPU or GPU.

An answer is indexed through several texts, so a FAISS id is ``answer_id << 10 | text_number``:
``id >> 10`` is the answer id, one answer's vectors are removed by id without a rebuild, and a
hit says which text matched. Up to ``exact_max`` vectors the index is exact
(``IndexIDMap2(IndexFlatIP)``); beyond, it is an IVF index whose ``nprobe`` is raised at build
time until recall@10 against exact search reaches a target on probes made from the data.

On a GPU the CPU index stays the master copy (FAISS's GPU indexes cannot remove ids) and a GPU
mirror serves searches. A write makes the mirror stale; until a background thread has copied
the master again, searches go to the CPU master, so results are never stale.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

logger = logging.getLogger(__name__)

TEXT_BITS = 10
MAX_TEXTS_PER_ANSWER = 1 << TEXT_BITS
# nprobe is raised at build until recall@10 on midpoint probes (halfway between two random
# stored vectors) reaches this. Midpoints fall between clusters, so they are harder than real
# questions: on real-text-shaped data, 0.90 here gave >= 0.98 for real questions at 100k and
# 1M vectors (bench/retrieval.py), where isotropic noise around stored vectors overestimated
# recall and let real questions drop to 0.91.
RECALL_TARGET = 0.90


def vector_id(answer_id: int, text_number: int) -> int:
    if not 0 <= text_number < MAX_TEXTS_PER_ANSWER:
        raise ValueError(f"an answer has at most {MAX_TEXTS_PER_ANSWER} indexed texts")
    return (answer_id << TEXT_BITS) | text_number


def answer_of(vid: int) -> int:
    return vid >> TEXT_BITS


def choose_device(setting: str, num_gpus: int | None = None) -> str:
    """``gpu`` when asked for (or ``auto``) and FAISS sees a GPU, else ``cpu``; logged."""
    if num_gpus is None:
        num_gpus = faiss.get_num_gpus()
    if setting == "cpu":
        logger.info("FAISS index on the CPU (configured)")
        return "cpu"
    if num_gpus > 0:
        logger.info("FAISS index on the GPU (%d visible, setting %s)", num_gpus, setting)
        return "gpu"
    if setting == "gpu":
        logger.warning("FAISS GPU requested but faiss.get_num_gpus() is 0: using the CPU")
    else:
        logger.info("FAISS index on the CPU (no GPU visible)")
    return "cpu"


def gpu_mirror(index: faiss.Index) -> faiss.Index:
    """A copy of a CPU index on GPU 0 (one StandardGpuResources per process)."""
    global _GPU_RESOURCES
    if _GPU_RESOURCES is None:
        _GPU_RESOURCES = faiss.StandardGpuResources()
    return faiss.index_cpu_to_gpu(_GPU_RESOURCES, 0, index)


_GPU_RESOURCES = None


class RWLock:
    """Many readers or one writer; a waiting writer holds back new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def ivf_nlist(count: int) -> int:
    return int(min(4096, max(16, round(count ** 0.5))))


def _as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
    return matrix


class VectorIndex:
    """A FAISS index of normalised vectors keyed by int64 ids, safe to use from threads."""

    def __init__(
        self, index: faiss.Index, device: str = "cpu",
        mirror: Callable[[faiss.Index], faiss.Index] | None = None,
    ) -> None:
        self.master = index
        self.dim = index.d
        self.device = device
        self._mirror_factory = mirror or (gpu_mirror if device == "gpu" else None)
        self._mirror: faiss.Index | None = None
        self._generation = 0
        self._mirror_generation = -1
        self._lock = RWLock()
        self._mirror_thread: threading.Thread | None = None
        self._refresh_mirror()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, dim: int, exact_max: int = 50_000,
        device: str = "cpu", seed: int = 0, progress: Callable[[str], None] | None = None,
        mirror: Callable[[faiss.Index], faiss.Index] | None = None,
    ) -> VectorIndex:
        """Exact up to ``exact_max`` vectors, else IVF trained on (a sample of) these vectors."""
        matrix = _as_matrix(vectors, dim)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(matrix) <= exact_max:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        else:
            index = cls._train_ivf(matrix, dim, seed, progress)
        if len(matrix):
            index.add_with_ids(matrix, ids)
        if isinstance(index, faiss.IndexIVF):
            cls._tune_nprobe(index, matrix, ids, seed, progress)
        return cls(index, device=device, mirror=mirror)

    @staticmethod
    def _train_ivf(
        matrix: np.ndarray, dim: int, seed: int, progress: Callable[[str], None] | None
    ) -> faiss.IndexIVFFlat:
        nlist = ivf_nlist(len(matrix))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = matrix[rng.choice(len(matrix), size=min(len(matrix), 64 * nlist), replace=False)]
        if progress:
            progress(f"training IVF ({nlist} lists) on {len(sample)} vectors")
        index.cp.seed = seed
        index.train(sample)
        return index

    @staticmethod
    def _tune_nprobe(
        index: faiss.IndexIVF, matrix: np.ndarray, ids: np.ndarray, seed: int,
        progress: Callable[[str], None] | None, queries: int = 200,
    ) -> None:
        """Smallest power-of-two nprobe whose recall@10 against exact reaches the target."""
        rng = np.random.default_rng(seed + 1)
        count = min(queries, len(matrix))
        first = matrix[rng.choice(len(matrix), size=count, replace=False)]
        second = matrix[rng.choice(len(matrix), size=count, replace=False)]
        middle = first + second
        probe = (middle / np.maximum(np.linalg.norm(middle, axis=1, keepdims=True), 1e-12)
                 ).astype(np.float32)
        exact = faiss.IndexFlatIP(matrix.shape[1])
        exact.add(matrix)
        _, truth = exact.search(probe, 10)
        nprobe = 1
        while True:
            index.nprobe = nprobe
            _, found = index.search(probe, 10)
            recall = recall_at_k(found, truth, id_of_row=ids)
            if progress:
                progress(f"nprobe {nprobe}: recall@10 {recall:.3f}")
            if recall >= RECALL_TARGET or nprobe >= index.nlist:
                break
            nprobe = min(nprobe * 2, index.nlist)

    # -- writes ---------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        matrix = _as_matrix(vectors, self.dim)
        if not len(matrix):
            return
        with self._lock.write():
            self.master.add_with_ids(matrix, np.ascontiguousarray(ids, dtype=np.int64))
            self._generation += 1
        self._refresh_mirror()

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        with self._lock.write():
            removed = int(self.master.remove_ids(faiss.IDSelectorBatch(ids)))
            self._generation += 1
        self._refresh_mirror()
        return removed

    # -- reads ----------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return int(self.master.ntotal)

    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self.master, faiss.IndexIVF) else "flat"

    @property
    def serving_from(self) -> str:
        """Which copy answers searches now: ``mirror`` (GPU) or ``master`` (CPU)."""
        return "mirror" if self._mirror_is_fresh() else "master"

    def _mirror_is_fresh(self) -> bool:
        return self._mirror is not None and self._mirror_generation == self._generation

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids (``-1`` where fewer than ``k`` vectors exist) per query row."""
        matrix = _as_matrix(queries, self.dim)
        k = max(1, min(k, 2048))
        with self._lock.read():
            target = self._mirror if self._mirror is not None and self._mirror_is_fresh() \
                else self.master
            if target.ntotal == 0:
                return (np.full((len(matrix), k), -np.inf, dtype=np.float32),
                        np.full((len(matrix), k), -1, dtype=np.int64))
            return target.search(matrix, k)

    # -- GPU mirror -----------------------------------------------------------------------
    def _refresh_mirror(self) -> None:
        """Copy the master to the mirror in the background (coalescing bursts of writes)."""
        if self._mirror_factory is None:
            return
        if self._mirror_thread is not None and self._mirror_thread.is_alive():
            return
        self._mirror_thread = threading.Thread(target=self._copy_mirror, daemon=True)
        self._mirror_thread.start()

    def _copy_mirror(self) -> None:
        assert self._mirror_factory is not None
        while True:
            with self._lock.read():
                generation = self._generation
                copy = self._mirror_factory(self.master)
            with self._lock.write():
                if generation == self._generation:
                    self._mirror, self._mirror_generation = copy, generation
                    return
            # a write landed while copying: copy again

    def wait_for_mirror(self, timeout: float = 30.0) -> bool:
        thread = self._mirror_thread
        if thread is not None:
            thread.join(timeout)
        return self._mirror_is_fresh()

    # -- persistence ----------------------------------------------------------------------
    def write(self, path: Path) -> None:
        with self._lock.read():
            faiss.write_index(self.master, str(path))

    @classmethod
    def read(cls, path: Path, device: str = "cpu") -> VectorIndex:
        return cls(faiss.read_index(str(path)), device=device)


def recall_at_k(found: np.ndarray, truth: np.ndarray, id_of_row: np.ndarray | None) -> float:
    """Mean share of the true top-k ids that ``found`` contains, per query row."""
    if id_of_row is not None:
        truth = id_of_row[truth]
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size
