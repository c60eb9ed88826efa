"""Index snapshots on disk, so that a restart does not re-encode every answer.

A snapshot is a folder under ``<index dir>/snapshots/`` holding the FAISS index, the vectors,
the answers with their indexed texts, and a manifest (model, dimension, counts, answers
version, checksum of the files). It is written completely under a temporary name, renamed, and
only then made current by atomically replacing the ``CURRENT`` pointer file, so an interrupted
save leaves the previous snapshot in force.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.files import sha256_files, write_atomic
from retrieval.answers import AnswerData
from retrieval.index import VectorIndex
from retrieval.retriever import Retriever, Row

logger = logging.getLogger(__name__)

FORMAT = 1
FILES = ("index.faiss", "vectors.npy", "answers.json")


class SnapshotError(RuntimeError):
    """A snapshot that cannot be used (missing, corrupt, or made with another model)."""


@dataclass(frozen=True)
class Manifest:
    format: int
    model: str
    model_id: str
    dim: int
    answers: int
    vectors: int
    index: str
    answers_version: int
    checksum: str

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        try:
            raw = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            return cls(**raw)
        except (OSError, ValueError, TypeError) as error:
            raise SnapshotError(f"{folder}: unreadable manifest: {error}") from error


def _checksum(folder: Path) -> str:
    return sha256_files(folder, FILES)


def current_folder(root: Path) -> Path | None:
    pointer = root / "CURRENT"
    if not pointer.is_file():
        return None
    return root / "snapshots" / pointer.read_text(encoding="utf-8").strip()


def save(retriever: Retriever, root: Path) -> Path:
    """Write a snapshot of the retriever's current state and make it current."""
    snapshots = root / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex[:12]
    staging = snapshots / f".tmp-{name}"
    staging.mkdir()
    written: dict[str, Any] = {}

    def write(index: VectorIndex, rows: list[Row], version: int) -> None:
        index.write(staging / "index.faiss")
        matrix = (np.vstack([vectors for _, _, vectors in rows]) if rows
                  else np.zeros((0, retriever.encoder.dim), dtype=np.float32))
        np.save(staging / "vectors.npy", matrix.astype(np.float32))
        answers = [{"answer": a.dict(), "texts": texts} for a, texts, _ in rows]
        (staging / "answers.json").write_text(json.dumps(answers, default=str), encoding="utf-8")
        written.update(answers=len(rows), vectors=len(matrix), index=index.kind, version=version)

    try:
        retriever.export_state(write)
        manifest = Manifest(
            format=FORMAT, model=retriever.encoder.model_name,
            model_id=retriever.encoder.model_id, dim=retriever.encoder.dim,
            answers=written["answers"], vectors=written["vectors"], index=written["index"],
            answers_version=written["version"], checksum=_checksum(staging),
        )
        (staging / "manifest.json").write_text(json.dumps(manifest.__dict__, indent=2) + "\n",
                                               encoding="utf-8")
        final = snapshots / name
        staging.rename(final)
        write_atomic(root / "CURRENT", name + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for old in snapshots.iterdir():
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    logger.info("saved index snapshot %s (%d answers, version %d)", name,
                manifest.answers, manifest.answers_version)
    return final


def load(retriever: Retriever, root: Path) -> Manifest:
    """Replace the retriever's state with the current snapshot; raises ``SnapshotError``."""
    folder = current_folder(root)
    if folder is None or not folder.is_dir():
        raise SnapshotError(f"no index snapshot under {root}")
    manifest = Manifest.read(folder)
    if manifest.format != FORMAT:
        raise SnapshotError(f"{folder}: snapshot format {manifest.format}, expected {FORMAT}")
    if manifest.model_id != retriever.encoder.model_id or manifest.dim != retriever.encoder.dim:
        raise SnapshotError(
            f"{folder}: made with model {manifest.model_id}, not {retriever.encoder.model_id}"
        )
    try:
        if _checksum(folder) != manifest.checksum:
            raise SnapshotError(f"{folder}: checksum mismatch (a file was changed or truncated)")
        matrix = np.load(folder / "vectors.npy")
        entries = json.loads((folder / "answers.json").read_text(encoding="utf-8"))
        index = VectorIndex.read(folder / "index.faiss", device=retriever.device)
    except (OSError, ValueError, RuntimeError) as error:
        if isinstance(error, SnapshotError):
            raise
        raise SnapshotError(f"{folder}: unreadable snapshot: {error}") from error
    rows, start = [], 0
    for entry in entries:
        texts = list(entry["texts"])
        rows.append((AnswerData(**entry["answer"]), texts, matrix[start:start + len(texts)]))
        start += len(texts)
    if start != len(matrix) or index.ntotal != len(matrix):
        raise SnapshotError(f"{folder}: vectors, texts and index disagree")
    retriever.import_state(index, rows, manifest.answers_version)
    return manifest


def stats(root: Path) -> dict[str, Any] | None:
    folder = current_folder(root)
    if folder is None or not folder.is_dir():
        return None
    info = Manifest.read(folder).__dict__.copy()
    info["folder"] = str(folder)
    info["size_bytes"] = sum(p.stat().st_size for p in folder.iterdir())
    return info
