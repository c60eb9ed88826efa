"""A persistent embedding cache, so that an unchanged text is never encoded twice.

Keys are ``sha256(model id, text)``: a new model (or new weights under the same name) gets
fresh keys, and the cache can never hand back a vector from another model.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


def text_key(model_id: str, text: str) -> str:
    return hashlib.sha256(f"{model_id}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()


class EmbeddingCache:
    """Float32 vectors in one SQLite file (WAL, so several processes can share it)."""

    def __init__(self, path: Path, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.dim = dim
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS embedding (key TEXT PRIMARY KEY, vec BLOB)")
        self._db.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, vec FROM embedding WHERE key IN ({marks})", chunk
                ).fetchall()
                for key, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape == (self.dim,):
                        found[key] = vec
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO embedding VALUES (?, ?)", rows)
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM embedding").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def forget_texts(path: Path, model_ids: Sequence[str], texts: Iterable[str]) -> int:
    """Delete the cached vectors of ``texts`` (as the encoder saw them) under each model: an
    erasure, since a vector is derived from the words. Returns how many rows went."""
    if not path.is_file():
        return 0
    keys = [text_key(model_id, text) for model_id in model_ids for text in set(texts)]
    db = sqlite3.connect(str(path), timeout=30)
    try:
        removed = sum(db.execute("DELETE FROM embedding WHERE key = ?", (key,)).rowcount
                      for key in keys)
        db.commit()
    finally:
        db.close()
    return removed
