"""A retriever kept live from an answers feed, one per process, loaded in the background.

The action server feeds it from the admin API over HTTP (``bot/actions/retriever.py``); the
admin API feeds its own (the console's "Try it") straight from its database. Either way it
loads the encoder, restores the last index snapshot (so a restart re-encodes nothing that is
unchanged), then follows the feed, so an answer published a second ago is searchable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from retrieval.encoder import load_encoder
from retrieval.retriever import Retriever
from retrieval.sync import AnswerSync, Changes

logger = logging.getLogger(__name__)

READY_TIMEOUT = 20.0


class LiveRetriever:
    """Starts on first use; ``ready`` waits (up to a timeout) for the first sync."""

    def __init__(self, feed: Callable[[], Callable[[int], Changes]], encoder_models: list[str],
                 index_dir: Path, poll_seconds: float, name: str = "retriever") -> None:
        self._feed, self._encoder_models = feed, encoder_models
        self._index_dir, self._poll_seconds, self._name = index_dir, poll_seconds, name
        self._lock = threading.Lock()
        self._sync: AnswerSync | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        try:
            encoder = load_encoder(self._encoder_models,
                                   cache_path=self._index_dir / "embeddings.sqlite")
            sync = AnswerSync(Retriever(encoder), self._feed(), interval=self._poll_seconds,
                              snapshot_root=self._index_dir)
            sync.restore()
            sync.start()
            self._sync = sync
        except Exception:
            logger.exception("the answer retriever (%s) failed to start", self._name)
        finally:
            self._started.set()

    def start_in_background(self) -> None:
        """Start loading once; returns at once."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._start, name=f"{self._name}-start",
                                                daemon=True)
                self._thread.start()

    def version(self) -> int | None:
        """The answers version it serves now, without waiting (None: not loaded yet)."""
        return None if self._sync is None else self._sync.retriever.version

    def ready(self, timeout: float = READY_TIMEOUT) -> Retriever | None:
        """The retriever once it has synced with its feed (or restored a snapshot)."""
        self.start_in_background()
        if not self._started.wait(timeout) or self._sync is None:
            return None
        if self._sync.synced.wait(timeout) or len(self._sync.retriever):
            return self._sync.retriever
        return None
