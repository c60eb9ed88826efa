"""The action server's answer retriever: one per process, kept live from the admin API.

It starts in the background when the action server imports ``bot.actions`` and follows the
admin API's answers feed (``/api/v1/answers/changes``) over HTTP (``retrieval.live``), so an
answer published or edited there, or a threshold saved in the console's simulator, is what the
bot answers with about a second later.
"""

from __future__ import annotations

import threading
from collections import Counter

import httpx

from common.config import get_settings
from retrieval.answers import AnswerData
from retrieval.live import READY_TIMEOUT, LiveRetriever
from retrieval.retriever import Retriever
from retrieval.sync import Changes, feed_calibration


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
                       bool(body["more"]), **feed_calibration(body))


def _feed() -> AdminApiFeed:
    return AdminApiFeed(get_settings().admin_api_url, get_settings().admin_api_timeout)


_live: LiveRetriever | None = None


def _the_retriever() -> LiveRetriever:
    global _live
    if _live is None:  # made on first use, so that it reads the settings of that moment
        settings = get_settings()
        _live = LiveRetriever(_feed, settings.encoder_models, settings.index_dir,
                              settings.retriever_poll_seconds, name="retriever")
    return _live


def start_in_background() -> None:
    """Start loading once per process; returns at once."""
    _the_retriever().start_in_background()


def ready_retriever(timeout: float = READY_TIMEOUT) -> Retriever | None:
    """The retriever once it has synced with the admin API (or restored a snapshot)."""
    return _the_retriever().ready(timeout)


_questions: Counter[str] = Counter()
_questions_lock = threading.Lock()


def count_question(handed_over: bool) -> None:
    """Count a searched question by where its vector came from (the health output shows it)."""
    with _questions_lock:
        _questions["handed_over" if handed_over else "encoded"] += 1


def question_counts() -> dict[str, int]:
    """Questions searched since start: vectors handed over by the classifier, and encoded."""
    with _questions_lock:
        return {"handed_over": _questions["handed_over"], "encoded": _questions["encoded"]}


def answers_version() -> int | None:
    """The answers version this process serves (its health output reports it)."""
    return _the_retriever().version()
