"""The action server's answer retriever: one per process, kept live from the admin API.

It starts in the background when the action server imports ``bot.actions``: it loads the
encoder, restores the last index snapshot (so a restart re-encodes nothing that is unchanged),
then follows the admin API's answers feed (``/api/v1/answers/changes``) over HTTP, so an answer
published or edited there is what the bot answers about a second later.
"""

from __future__ import annotations

import logging
import threading

import httpx

from common.config import get_settings
from retrieval.answers import AnswerData
from retrieval.encoder import load_encoder
from retrieval.retriever import Retriever
from retrieval.sync import AnswerSync, Changes

logger = logging.getLogger(__name__)

READY_TIMEOUT = 20.0

_lock = threading.Lock()
_sync: AnswerSync | None = None
_started = threading.Event()


class AdminApiFeed:
    """Reads the answers feed over HTTP (the bot never imports the admin API)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self._client = httpx.Client(base_url=base_url, timeout=timeout)

    def __call__(self, since: int) -> Changes:
        reply = self._client.get("/api/v1/answers/changes", params={"since": since})
        reply.raise_for_status()
        body = reply.json()
        upserts = [AnswerData(**{k: a[k] for k in AnswerData.__fields__ if k in a})
                   for a in body["upserts"]]
        return Changes(int(body["version"]), upserts, [int(i) for i in body["removed"]],
                       bool(body["more"]))


def _start() -> None:
    global _sync
    try:
        index_dir = get_settings().index_dir
        encoder = load_encoder(get_settings().encoder_models,
                               cache_path=index_dir / "embeddings.sqlite")
        sync = AnswerSync(
            Retriever(encoder),
            AdminApiFeed(get_settings().admin_api_url, get_settings().admin_api_timeout),
            interval=get_settings().retriever_poll_seconds, snapshot_root=index_dir,
        )
        sync.restore()
        sync.start()
        _sync = sync
    except Exception:
        logger.exception("the answer retriever failed to start")
    finally:
        _started.set()


def start_in_background() -> None:
    """Start loading once per process; returns at once."""
    with _lock:
        if not _started.is_set() and not any(t.name == "retriever-start"
                                             for t in threading.enumerate()):
            threading.Thread(target=_start, name="retriever-start", daemon=True).start()


def ready_retriever(timeout: float = READY_TIMEOUT) -> Retriever | None:
    """The retriever once it has synced with the admin API (or restored a snapshot)."""
    start_in_background()
    if not _started.wait(timeout) or _sync is None:
        return None
    if _sync.synced.wait(timeout) or len(_sync.retriever):
        return _sync.retriever
    return None
