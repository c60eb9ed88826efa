"""Keeping the dashboard's turn facts (``TurnFact``) up to date with the conversations.

Two ways in, one derivation (``admin_api.tracker.fold``):

- **The event broker** (``HELPDESK_EVENT_BROKER_URL``, RabbitMQ): Rasa publishes every event
  it saves (``event_broker: type: pika``), and a consumer thread folds each one into its
  conversation's latest turn as it arrives; a message is acknowledged only after its fact is
  committed, so a restart loses nothing and a redelivery counts nothing twice.
- **Embedded** (the default, nothing to run): the conversations with events past a cursor are
  re-derived from the tracker store, whole, by a background thread and before every read of
  the figures. Re-deriving a whole conversation makes a pass idempotent, so two processes
  that race, or a pass interrupted half-way, leave the same rows.

Erasures and retention purges delete a conversation's facts with its events
(``admin_api.retention``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from admin_api.models import Meta, TurnFact, utcnow
from admin_api.tracker import (
    FALLBACK_ACTIONS,
    LATE_COMMIT_IDS,
    TrackerStore,
    Turn,
    fold,
    to_timestamp,
)
from common.config import get_settings
from common.db import get_engine

logger = logging.getLogger(__name__)
CURSOR_KEY = "turn_facts_cursor"
BATCH = 2000
CHUNK = 500
# A save that began before a later one may commit after it (PostgreSQL, several Rasa
# instances): conversations with events this recent are re-derived on each pass.
SETTLE = timedelta(seconds=60)
BINS = 10
# More new events than this are left to the background thread rather than a page request.
REQUEST_CATCH_UP_MAX = 20_000
_lock = threading.Lock()


def confidence_bin(confidence: float | None) -> int | None:
    return None if confidence is None else min(BINS - 1, max(0, int(confidence * BINS)))


def turn_key(turn: Turn) -> str:
    return turn.message_id or f"t{turn.timestamp:.6f}"


def _latency(turn: Turn) -> int | None:
    if turn.replied_at is None or not turn.timestamp:
        return None
    return max(0, round((turn.replied_at - turn.timestamp) * 1000))


def fact_of(turn: Turn) -> TurnFact:
    return TurnFact(session_id=turn.session_id, turn_key=turn_key(turn), at=turn.at,
                    day=turn.at.date().isoformat(), intent=turn.intent,
                    confidence=turn.confidence, confidence_bin=confidence_bin(turn.confidence),
                    model_id=turn.model_id, outcome=turn.outcome,
                    answer_id=turn.answer_ids[0] if turn.answer_ids else None,
                    latency_ms=_latency(turn))


def _columns(fact: TurnFact) -> tuple:
    return (fact.turn_key, fact.at, fact.intent, fact.confidence, fact.model_id, fact.outcome,
            fact.answer_id, fact.latency_ms)


def _cursor(session: Session) -> int:
    row = session.get(Meta, CURSOR_KEY)
    return int(row.value) if row else 0


def refresh(session: Session, store: TrackerStore, session_ids: Iterable[str]) -> int:
    """Re-derive the facts of these conversations from the tracker store; the rows of a
    conversation change only where a turn did. Returns the conversations rewritten."""
    ids = sorted(set(session_ids))
    changed = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        fresh: dict[str, list[TurnFact]] = {i: [] for i in chunk}
        for turn in store.turns_of_conversations(chunk):
            fresh[turn.session_id].append(fact_of(turn))
        held: dict[str, list[tuple]] = {i: [] for i in chunk}
        for fact in session.exec(select(TurnFact).where(
                TurnFact.session_id.in_(chunk)).order_by(TurnFact.id)).all():  # type: ignore[attr-defined]
            held[fact.session_id].append(_columns(fact))
        stale = [i for i in chunk if [_columns(f) for f in fresh[i]] != held[i]]
        if stale:
            session.execute(delete(TurnFact).where(
                TurnFact.session_id.in_(stale)))  # type: ignore[attr-defined]
            session.add_all([f for i in stale for f in fresh[i]])
            changed += len(stale)
    return changed


def catch_up(session: Session, store: TrackerStore) -> int:
    """Bring the facts up to the tracker store's last event (embedded mode); returns the
    conversations rewritten. A tracker store far behind the cursor (replaced, or emptied) is
    taken from the start again; one just behind it lost its newest rows to an erasure, and
    SQLite gives their ids to the next events: the cursor steps back to meet them."""
    if not store.exists():
        return 0
    with _lock:
        cursor = _cursor(session)
        last = store.last_event_id()
        if cursor and last < cursor - LATE_COMMIT_IDS:
            logger.warning("the tracker store is behind the dashboard's cursor: rebuilding")
            session.execute(delete(TurnFact))
            cursor = 0
        elif last < cursor:
            cursor = last
        recent: Any = utcnow() - SETTLE if cursor else None
        total = 0
        try:
            while True:
                ids, last = store.changed_conversations(cursor, BATCH, recent)
                total += refresh(session, store, ids)
                recent = None
                if last != cursor:
                    session.merge(Meta(key=CURSOR_KEY, value=str(last)))
                session.commit()
                if last == cursor:
                    return total
                cursor = last
        except IntegrityError:
            # Another process wrote the same conversations first: its rows are the same.
            session.rollback()
            return total


def forget(session: Session, session_id: str) -> int:
    """A conversation's facts go with it (erasure, purge); the caller commits."""
    return int(session.execute(delete(TurnFact).where(  # type: ignore[attr-defined]
        TurnFact.session_id == session_id)).rowcount)


def fact_count(session: Session) -> int:
    return int(session.execute(sa_select(func.count()).select_from(TurnFact)).scalar_one())


# --- the event broker ---------------------------------------------------------------------


def _turn_from(fact: TurnFact) -> Turn:
    """The state ``fold`` needs of a turn already stored."""
    return Turn(session_id=fact.session_id, message_id=fact.turn_key, event_id=0, at=fact.at,
                text="", intent=fact.intent, confidence=fact.confidence,
                model_id=fact.model_id, outcome=fact.outcome,
                answer_ids=[fact.answer_id] if fact.answer_id is not None else [],
                replied_at=None if fact.latency_ms is None
                else to_timestamp(fact.at) + fact.latency_ms / 1000,
                timestamp=to_timestamp(fact.at))


def apply_event(session: Session, body: dict) -> bool:
    """Fold one event the broker delivered (Rasa's event dict with ``sender_id``) into the
    facts; the caller commits. False when it says nothing about a turn."""
    session_id = body.get("sender_id")
    kind = body.get("event")
    if not isinstance(session_id, str) or not isinstance(kind, str):
        return False
    # The events a turn is made of, as the tracker store's reader selects them
    # (``TURN_EVENTS``): listens and other actions would cost a read and a write for nothing.
    if kind not in ("user", "bot", "pause", "action") or (
            kind == "action" and body.get("name") not in FALLBACK_ACTIONS):
        return False
    if kind == "user":
        turn = fold(None, session_id, 0, kind, body)
        assert turn is not None
        key = turn_key(turn)
        if session.exec(select(TurnFact.id).where(TurnFact.session_id == session_id,
                                                  TurnFact.turn_key == key)).first():
            return False  # a redelivery
        session.add(fact_of(turn))
        return True
    latest = session.exec(select(TurnFact).where(TurnFact.session_id == session_id)
                          .order_by(col(TurnFact.at).desc(), col(TurnFact.id).desc())
                          .limit(1)).first()
    if latest is None:
        return False
    turn = _turn_from(latest)
    had_reply = latest.latency_ms is not None
    fold(turn, session_id, 0, kind, body)
    latest.outcome = turn.outcome
    latest.answer_id = turn.answer_ids[0] if turn.answer_ids else None
    if not had_reply:
        latest.latency_ms = _latency(turn)
    session.add(latest)
    return True


def _consume(stop: threading.Event) -> None:
    """Consume the broker's queue until ``stop`` is set, reconnecting after failures."""
    import asyncio

    import aio_pika

    settings = get_settings()

    async def run() -> None:
        while not stop.is_set():
            try:
                connection = await aio_pika.connect(settings.event_broker_url)
                async with connection:
                    channel = await connection.channel()
                    await channel.set_qos(prefetch_count=200)
                    queue = await channel.declare_queue(settings.event_queue, durable=True)
                    while not stop.is_set():
                        message = await queue.get(fail=False, timeout=5)
                        if message is None:
                            await asyncio.sleep(0.2)
                            continue
                        _handle(message.body)
                        await message.ack()
            except Exception as error:  # noqa: BLE001 - broker or database down: retry
                # Unacknowledged messages stay queued and come back after the reconnection.
                logger.warning("event broker consumer stopped, reconnecting: %s", error)
                await asyncio.sleep(2)

    asyncio.run(run())


def _handle(raw: bytes) -> None:
    """One message: stored, or dropped when it is not an event (a database failure raises,
    and the message is not acknowledged)."""
    try:
        body = json.loads(raw)
    except ValueError:
        logger.warning("event broker: a message that is not JSON was dropped")
        return
    if not isinstance(body, dict):
        return
    for _ in range(3):
        try:
            with Session(get_engine()) as session:
                if apply_event(session, body):
                    session.commit()
            return
        except IntegrityError:
            continue  # a concurrent consumer stored the same turn: look again
    logger.warning("event broker: an event of %s could not be stored", body.get("sender_id"))


def _poll(stop: threading.Event) -> None:
    """Catch up at once (a first start on a large store has the most to fold), then every
    ``metrics_sync_seconds``."""
    settings = get_settings()
    while not stop.is_set():
        try:
            with Session(get_engine()) as session:
                catch_up(session, TrackerStore(settings.tracker_store_url))
        except SQLAlchemyError as error:
            logger.warning("dashboard catch-up failed, will retry: %s", error)
        stop.wait(settings.metrics_sync_seconds)


def start(stop: threading.Event) -> threading.Thread | None:
    """The ingesting thread: the broker's consumer when one is configured, otherwise a
    catch-up every ``metrics_sync_seconds`` (none: 0; reads still catch up)."""
    settings = get_settings()
    if settings.event_broker_url:
        thread = threading.Thread(target=_consume, args=(stop,), name="turn-facts",
                                  daemon=True)
    elif settings.metrics_sync_seconds > 0:
        thread = threading.Thread(target=_poll, args=(stop,), name="turn-facts", daemon=True)
    else:
        return None
    thread.start()
    return thread


@dataclass
class Backlog:
    """Events the figures do not hold yet, while the background thread folds them."""

    folded: int
    total: int


def ensure_fresh(session: Session, store: TrackerStore) -> Backlog | None:
    """Before a read, in embedded mode: catch up, unless the background thread has more than
    a request should wait for (the first start on a large store: minutes). Then the figures
    are read as far as they go, and the backlog says how far that is. The broker's consumer
    keeps up by itself."""
    settings = get_settings()
    if settings.event_broker_url or not store.exists():
        return None
    last = store.last_event_id()
    cursor = _cursor(session)
    if settings.metrics_sync_seconds > 0 and last - cursor > REQUEST_CATCH_UP_MAX:
        return Backlog(cursor, last)
    catch_up(session, store)
    return None

