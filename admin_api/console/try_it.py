"""What the bot would do with a question right now, for the console's "Try it".

Classification goes through Rasa's own ``/model/parse`` (the served model, its fallback
classifier included); the search runs on a retriever in this process, fed from the admin
database itself and kept live like the action server's; the reply comes from
``retrieval.reply``, the mapping the bot uses.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from admin_api import crud, rasa_client
from admin_api.models import Answer
from common.config import get_settings
from common.db import get_engine
from retrieval.answers import AnswerData
from retrieval.decision import CLARIFY_OPTIONS
from retrieval.live import LiveRetriever
from retrieval.reply import Reply, reply_for
from retrieval.sync import Changes, feed_calibration

INTENTS_TTL = 60.0


def _database_feed() -> Any:
    def feed(since: int) -> Changes:
        with Session(get_engine()) as session:
            body = crud.answer_changes(session, since)
        upserts = [AnswerData(**{k: getattr(a, k) for k in AnswerData.__fields__})
                   for a in body["upserts"]]
        return Changes(int(body["version"]), upserts, [int(i) for i in body["removed"]],
                       bool(body["more"]), **feed_calibration(body))

    return feed


_live: LiveRetriever | None = None
_lock = threading.Lock()


def live_retriever() -> LiveRetriever:
    global _live
    with _lock:
        if _live is None:
            settings = get_settings()
            _live = LiveRetriever(_database_feed, settings.encoder_models,
                                  settings.index_dir / "console",
                                  settings.retriever_poll_seconds, name="console-retriever")
        return _live


@dataclass
class Trial:
    text: str
    intent: str | None = None
    confidence: float | None = None
    ranking: list[dict[str, Any]] = field(default_factory=list)
    hits: list[dict[str, Any]] = field(default_factory=list)
    reply: Reply | None = None
    problems: list[str] = field(default_factory=list)


def trial(text: str) -> Trial:
    """Classify, search and decide, as the bot would now; what could not be done is named in
    ``problems`` instead of failing the page."""
    result = Trial(text)
    parsed: dict[str, Any] = {}
    try:
        parsed = rasa_client.parse(text)
    except rasa_client.RasaUnavailable as error:
        result.problems.append(f"the intent ranking is missing: {error}")
    intent = parsed.get("intent") or {}
    result.intent, result.confidence = intent.get("name"), intent.get("confidence")
    result.ranking = list(parsed.get("intent_ranking") or [])[:5]
    retriever = live_retriever().ready()
    if retriever is None:
        result.problems.append("the answer retriever is still loading: try again shortly")
        result.reply = reply_for(None, lambda _: None)
        return result
    found = retriever.search(text, k=CLARIFY_OPTIONS, intent_ranking=result.ranking or None)
    result.hits = [{"answer_id": h.answer_id, "title": h.title, "score": round(h.score, 4)}
                   for h in found.hits]
    result.reply = reply_for(found, retriever.answer)
    return result


_intents: tuple[float, list[str]] = (0.0, [])


def model_intents(session: Session) -> list[str]:
    """The served model's intents for autocompletion (cached a minute); the answers' own
    intents when Rasa cannot be asked."""
    global _intents
    at, names = _intents
    if time.monotonic() - at < INTENTS_TTL and names:
        return names
    try:
        names = rasa_client.intents()
    except rasa_client.RasaUnavailable:
        names = sorted({i for i in session.exec(select(Answer.intent)).all() if i})
    _intents = (time.monotonic(), names)
    return names
