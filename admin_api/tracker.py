"""Conversations, read straight from Rasa's SQL tracker store (their words are never copied).

Rasa keeps one ``events`` row per event (``rasa/core/tracker_store.py``, ``SQLEvent``); this
module reads those rows and groups them into *turns*: a customer message and what the bot did
about it (answered, asked to clarify, fell back, handed off). Conversations, the review inbox
and the metrics' turn facts (``admin_api.turn_facts``, which hold no words) are all built from
turns by ``fold``, so they agree with each other by construction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    cast,
    func,
    inspect,
    or_,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

from common.db import get_engine

EVENTS = Table(
    "events", MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)
# Actions that mean "the bot did not know": ours, and Rasa's own fallbacks.
FALLBACK_ACTIONS = frozenset({"utter_no_answer", "action_default_fallback", "utter_default"})
DECISIONS = frozenset({"answer", "clarify", "fallback"})
# How far behind the cursor a late commit is looked for (``changed_conversations``).
LATE_COMMIT_IDS = 2000


def from_timestamp(value: float | None) -> datetime:
    return datetime.fromtimestamp(value or 0.0, tz=timezone.utc).replace(tzinfo=None)


def to_timestamp(value: datetime) -> float:
    return value.replace(tzinfo=timezone.utc).timestamp()


@dataclass
class Turn:
    """A customer message and the bot's handling of it."""

    session_id: str
    message_id: str
    event_id: int
    at: datetime
    text: str
    intent: str | None
    confidence: float | None
    model_id: str | None
    outcome: str = "none"  # answer | clarify | fallback | handoff | reply | none
    answer_ids: list[int] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)
    # When the bot first answered it (the event's timestamp): the reply latency's end.
    replied_at: float | None = None
    timestamp: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "at": self.at, "text": self.text,
                "intent": self.intent, "confidence": self.confidence, "model_id": self.model_id,
                "outcome": self.outcome, "answer_ids": self.answer_ids, "replies": self.replies}


@dataclass
class Handoff:
    """A conversation handed to a person: what the customer wrote while waiting (the question
    the bot could not take) and what staff answered."""

    session_id: str
    waiting: list[Turn] = field(default_factory=list)
    staff_replies: list[str] = field(default_factory=list)


def _user_turn(session_id: str, event_id: int, event: dict) -> Turn:
    parse = event.get("parse_data") or {}
    intent = parse.get("intent") or {}
    confidence = intent.get("confidence")
    return Turn(
        session_id=session_id,
        message_id=str(event.get("message_id") or parse.get("message_id") or ""),
        event_id=event_id,
        at=from_timestamp(event.get("timestamp")),
        timestamp=float(event.get("timestamp") or 0.0),
        text=str(event.get("text") or ""),
        intent=intent.get("name"),
        confidence=float(confidence) if isinstance(confidence, (int, float)) else None,
        model_id=(event.get("metadata") or {}).get("model_id"),
    )


def unwrap_custom(event: dict) -> dict:
    """A bot event's custom payload (our answer action nests it in ``data``: see
    ``bot/actions/answers.py``)."""
    custom = (event.get("data") or {}).get("custom")
    if not isinstance(custom, dict):
        return {}
    inner = custom.get("data")
    return inner if isinstance(inner, dict) else custom


def _apply(turn: Turn, kind: str, event: dict) -> None:
    """Fold one bot-side event into the outcome of the turn it follows."""
    if kind == "pause":
        turn.outcome = "handoff"
        return
    if kind == "action" and event.get("name") in FALLBACK_ACTIONS and turn.outcome != "handoff":
        turn.outcome = "fallback"
        return
    metadata = event.get("metadata") or {}
    if kind != "bot" or metadata.get("staff"):
        return
    if turn.replied_at is None and isinstance(event.get("timestamp"), (int, float)):
        turn.replied_at = float(event["timestamp"])
    if event.get("text"):
        turn.replies.append(str(event["text"]))
    if metadata.get("utter_action") in FALLBACK_ACTIONS and turn.outcome != "handoff":
        turn.outcome = "fallback"
        return
    custom = unwrap_custom(event)
    if custom:
        answer_id = custom.get("answer_id")
        if isinstance(answer_id, int) and answer_id not in turn.answer_ids:
            turn.answer_ids.append(answer_id)
        decision = custom.get("decision")
        if decision in DECISIONS and turn.outcome not in ("handoff", "fallback"):
            turn.outcome = decision
            return
    if turn.outcome == "none":
        turn.outcome = "reply"


def fold(turn: Turn | None, session_id: str, event_id: int, kind: str,
         event: dict) -> Turn | None:
    """One event applied to a conversation's latest turn: a customer message starts a new
    turn (returned), anything else changes the current one. The tracker store's reader and
    the event broker's consumer both go through here, so they count the same."""
    if kind == "user":
        return _user_turn(session_id, event_id, event)
    if turn is not None:
        _apply(turn, kind, event)
    return turn


def turns_of(rows: Iterable[Any]) -> Iterator[Turn]:
    """Turns from event rows ordered by sender and id (events before a first message, such as
    session starts, belong to no turn)."""
    current: Turn | None = None
    for row in rows:
        if current is not None and current.session_id != row.sender_id:
            yield current
            current = None
        try:
            event = json.loads(row.data or "{}")
        except ValueError:
            continue
        if row.type_name == "user" and current is not None:
            yield current
        current = fold(current, row.sender_id, row.id, row.type_name, event)
    if current is not None:
        yield current


def _like_json_string(text: str) -> str:
    """``text`` as Rasa's JSON stores it (non-ASCII escaped), escaped for a LIKE pattern."""
    return json.dumps(text)[1:-1].replace("\\", "\\\\").replace("%", "\\%").replace(
        "_", "\\_")


# Only the events a turn is made of: most rows (listens, featurizations, session starts) say
# nothing about it, and skipping them in SQL halves the JSON to parse.
TURN_EVENTS = or_(EVENTS.c.type_name.in_(("user", "bot", "pause")),
                  and_(EVENTS.c.type_name == "action",
                       EVENTS.c.action_name.in_(sorted(FALLBACK_ACTIONS))))


class TrackerStore:
    """Read access (plus erasure) to one Rasa SQL tracker store."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = get_engine(url)

    def exists(self) -> bool:
        """False until Rasa has started once and created its table."""
        return inspect(self.engine).has_table("events")

    def _rows(self, query: Any) -> list[Any]:
        if not self.exists():
            return []
        with self.engine.connect() as connection:
            return list(connection.execute(query))

    def events(self, session_id: str) -> list[dict]:
        rows = self._rows(sa_select(EVENTS).where(EVENTS.c.sender_id == session_id)
                          .order_by(EVENTS.c.id))
        return [{"id": r.id, "type": r.type_name, **json.loads(r.data or "{}")} for r in rows]

    def turns(self, since: datetime | None = None, until: datetime | None = None,
              session_id: str | None = None, after_event: int | None = None) -> list[Turn]:
        query = sa_select(EVENTS).where(TURN_EVENTS).order_by(EVENTS.c.sender_id, EVENTS.c.id)
        if session_id is not None:
            query = query.where(EVENTS.c.sender_id == session_id)
        if after_event is not None:
            query = query.where(EVENTS.c.id > after_event)
        if since is not None:
            query = query.where(EVENTS.c.timestamp >= to_timestamp(since))
        if until is not None:
            query = query.where(EVENTS.c.timestamp < to_timestamp(until))
        return list(turns_of(self._rows(query)))

    def turns_of_conversations(self, session_ids: list[str]) -> list[Turn]:
        """Every turn of the given conversations."""
        if not session_ids:
            return []
        return list(turns_of(self._rows(
            sa_select(EVENTS).where(TURN_EVENTS, EVENTS.c.sender_id.in_(session_ids))
            .order_by(EVENTS.c.sender_id, EVENTS.c.id))))

    def changed_conversations(self, after_event: int, limit: int,
                              recent: datetime | None = None) -> tuple[list[str], int]:
        """The conversations with a turn event after ``after_event`` (the first ``limit``
        such events, in id order) and the last id seen. With ``recent``, also those with an
        event since then among the ids just before ``after_event``: on PostgreSQL, a save
        that started earlier can commit after a later one, and its rows appear behind the
        cursor."""
        rows = self._rows(sa_select(EVENTS.c.id, EVENTS.c.sender_id)
                          .where(TURN_EVENTS, EVENTS.c.id > after_event)
                          .order_by(EVENTS.c.id).limit(limit))
        found = {r.sender_id for r in rows}
        if recent is not None:
            found |= {r.sender_id for r in self._rows(
                sa_select(EVENTS.c.sender_id).distinct()
                .where(EVENTS.c.id > max(0, after_event - LATE_COMMIT_IDS),
                       EVENTS.c.id <= after_event,
                       EVENTS.c.timestamp >= to_timestamp(recent)))}
        return sorted(found), (rows[-1].id if rows else after_event)

    def handoffs(self, limit: int = 500) -> list[Handoff]:
        """The ``limit`` most recently handed-off conversations, with the customer's messages
        while paused (typed words only: a button's ``/intent`` says nothing) and the staff's
        replies."""
        latest = (sa_select(EVENTS.c.sender_id).where(EVENTS.c.type_name == "pause")
                  .group_by(EVENTS.c.sender_id).order_by(func.max(EVENTS.c.id).desc())
                  .limit(limit).subquery())
        rows = self._rows(sa_select(EVENTS).where(
            EVENTS.c.type_name.in_(("user", "bot", "pause", "resume")),
            EVENTS.c.sender_id.in_(sa_select(latest.c.sender_id)))
            .order_by(EVENTS.c.sender_id, EVENTS.c.id))
        found: dict[str, Handoff] = {}
        paused: set[str] = set()
        for row in rows:
            handoff = found.setdefault(row.sender_id, Handoff(row.sender_id))
            if row.type_name == "pause":
                paused.add(row.sender_id)
                continue
            if row.type_name == "resume":
                paused.discard(row.sender_id)
                continue
            event = json.loads(row.data or "{}")
            if row.type_name == "bot" and (event.get("metadata") or {}).get("staff"):
                if event.get("text"):
                    handoff.staff_replies.append(str(event["text"]))
            elif row.type_name == "user" and row.sender_id in paused:
                turn = _user_turn(row.sender_id, row.id, event)
                if turn.text.strip() and not turn.text.startswith("/") and turn.message_id:
                    handoff.waiting.append(turn)
        return list(found.values())

    def pauses_after(self, event_id: int) -> int:
        """How many hand-offs happened after event ``event_id``."""
        rows = self._rows(sa_select(func.count()).where(EVENTS.c.type_name == "pause",
                                                        EVENTS.c.id > event_id))
        return int(rows[0][0]) if rows else 0

    def last_event_id(self) -> int:
        rows = self._rows(sa_select(func.max(EVENTS.c.id)))
        return int(rows[0][0] or 0) if rows else 0

    def _turn_filter(self, intent: str | None, confidence_below: float | None,
                     model_id: str | None) -> Any:
        """The conversations with a customer message classified as ``intent``, below
        ``confidence_below``, or by model ``model_id`` (all given ones on the same message),
        as a subquery of sender ids; None when no filter is given."""
        if intent is None and confidence_below is None and model_id is None:
            return None
        query = sa_select(EVENTS.c.sender_id).where(EVENTS.c.type_name == "user")
        if intent is not None:
            query = query.where(EVENTS.c.intent_name == intent)
        if confidence_below is not None:
            query = query.where(self._json_number(
                "$.parse_data.intent.confidence", ("parse_data", "intent", "confidence"))
                < confidence_below)
        if model_id is not None:
            query = query.where(EVENTS.c.data.like(
                f'%"model_id": "{_like_json_string(model_id)}"%', escape="\\"))
        return query

    def _json_number(self, path: str, keys: tuple[str, ...]) -> Any:
        """A number inside the events' JSON ``data``, in the dialect's own JSON functions."""
        if self.engine.dialect.name == "postgresql":
            return cast(cast(EVENTS.c.data, JSONB)[keys].astext, Float)
        return func.json_extract(EVENTS.c.data, path)

    def conversations(self, q: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, session_ids: list[str] | None = None,
                      sort: str = "-last_at", limit: int = 50, offset: int = 0,
                      intent: str | None = None, confidence_below: float | None = None,
                      model_id: str | None = None, handed_off: bool | None = None
                      ) -> tuple[int, list[dict]]:
        """One summary per conversation with a customer message, filtered; and the total.
        ``handed_off``: ever handed to a person (True) or never (False)."""
        users = EVENTS.c.type_name == "user"
        summary = (sa_select(EVENTS.c.sender_id,
                             func.min(EVENTS.c.timestamp).label("first"),
                             func.max(EVENTS.c.timestamp).label("last"),
                             func.count().label("messages"))
                   .where(users).group_by(EVENTS.c.sender_id))
        if session_ids is not None:
            summary = summary.where(EVENTS.c.sender_id.in_(session_ids))
        turns = self._turn_filter(intent, confidence_below, model_id)
        if turns is not None:
            summary = summary.where(EVENTS.c.sender_id.in_(turns))
        if handed_off is not None:
            pauses = sa_select(EVENTS.c.sender_id).where(EVENTS.c.type_name == "pause")
            summary = summary.where(EVENTS.c.sender_id.in_(pauses) if handed_off
                                    else EVENTS.c.sender_id.not_in(pauses))
        if q:
            needle = _like_json_string(q)
            matching = sa_select(EVENTS.c.sender_id).where(
                and_(users, EVENTS.c.data.ilike(f'%"text": "%{needle}%', escape="\\")))
            summary = summary.where(EVENTS.c.sender_id.in_(matching))
        table = summary.subquery()
        query = sa_select(table)
        if since is not None:
            query = query.where(table.c["last"] >= to_timestamp(since))
        if until is not None:
            query = query.where(table.c["first"] < to_timestamp(until))
        total_rows = self._rows(sa_select(func.count()).select_from(query.subquery()))
        total = int(total_rows[0][0]) if total_rows else 0
        column = {"last_at": table.c["last"], "first_at": table.c["first"],
                  "messages": table.c["messages"]}[sort.lstrip("-")]
        ordered = column.desc() if sort.startswith("-") else column.asc()
        rows = self._rows(query.order_by(ordered, table.c.sender_id).limit(limit)
                          .offset(offset))
        return total, [{"session_id": r.sender_id, "first_at": from_timestamp(r.first),
                        "last_at": from_timestamp(r.last), "messages": int(r.messages)}
                       for r in rows]

    def last_texts(self, session_ids: list[str]) -> dict[str, str]:
        """Each conversation's latest customer message (for lists of conversations)."""
        if not session_ids:
            return {}
        latest = (sa_select(func.max(EVENTS.c.id))
                  .where(EVENTS.c.type_name == "user", EVENTS.c.sender_id.in_(session_ids))
                  .group_by(EVENTS.c.sender_id))
        rows = self._rows(sa_select(EVENTS.c.sender_id, EVENTS.c.data)
                          .where(EVENTS.c.id.in_(latest)))
        return {r.sender_id: str(json.loads(r.data).get("text") or "") for r in rows}

    def paused(self) -> dict[str, datetime]:
        """Conversations whose latest pause/resume event is a pause, with when it paused."""
        marks = EVENTS.c.type_name.in_(("pause", "resume"))
        latest = (sa_select(EVENTS.c.sender_id, func.max(EVENTS.c.id).label("last_id"))
                  .where(marks).group_by(EVENTS.c.sender_id).subquery())
        rows = self._rows(sa_select(EVENTS.c.sender_id, EVENTS.c.type_name, EVENTS.c.timestamp)
                          .join(latest, EVENTS.c.id == latest.c.last_id))
        return {r.sender_id: from_timestamp(r.timestamp) for r in rows if r.type_name == "pause"}

    def erase(self, session_id: str) -> int:
        """Delete a conversation's every event (a customer's erasure request)."""
        if not self.exists():
            return 0
        with self.engine.begin() as connection:
            return connection.execute(EVENTS.delete().where(EVENTS.c.sender_id == session_id)
                                      ).rowcount

    def stale_conversations(self, before: datetime) -> list[str]:
        """Conversations whose last event is older than ``before``."""
        rows = self._rows(sa_select(EVENTS.c.sender_id).group_by(EVENTS.c.sender_id)
                          .having(func.max(EVENTS.c.timestamp) < to_timestamp(before)))
        return [r.sender_id for r in rows]
