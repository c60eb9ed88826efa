"""Rasa's SQL tracker store, minus the sentence vectors the classifier hands to the retriever,
and riding out a database restart.

The intent classifier puts the message's sentence vector into the parse data
(``nlu.handover``) so that the action server need not encode the same text again. It is
needed only during the turn, while Rasa calls the action server with the tracker in memory.
Stored, it would add about a kilobyte to every customer message, go to the event broker and
into backups, and be one more copy of something derived from the customer's words for erasure
to find. So this store removes it from every customer message before saving (and before the
event broker sees the events); the rest is Rasa's ``SQLTrackerStore`` unchanged, on SQLite or
PostgreSQL.

A database restart (or a dropped connection) used to lose turns: Rasa wraps every tracker store
in a fail-safe one, which logs a failed save and keeps the turn in memory only, while the
customer's message has already been acknowledged. So this store checks a pooled connection
before using it (SQLAlchemy's pre-ping) and retries a read or a save that fails on the
connection for up to ``SAVE_RETRY_SECONDS``, which covers a restart. A save is one
transaction: a failed try leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.exc import DBAPIError

from nlu.handover import PARSE_KEY

logger = logging.getLogger(__name__)
SAVE_RETRY_SECONDS = 20.0
T = TypeVar("T")


def strip_vectors(tracker: DialogueStateTracker) -> int:
    """Remove the handed-over vectors from the tracker's customer messages; how many."""
    removed = 0
    for event in tracker.events:
        if isinstance(event, UserUttered) and PARSE_KEY in event.parse_data:
            del event.parse_data[PARSE_KEY]  # type: ignore[misc]
            removed += 1
    return removed


class CompactSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` that never stores a handed-over sentence vector and retries a read
    or a save the database dropped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.engine.pool._pre_ping = True  # a connection a restart closed is replaced

    async def save(self, tracker: DialogueStateTracker) -> None:
        strip_vectors(tracker)
        await self._retrying(f"saving {tracker.sender_id}", lambda: super(
            CompactSQLTrackerStore, self).save(tracker))

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        # Failing here, Rasa's fail-safe store would start the conversation afresh in memory,
        # and the save after the turn would store nothing of it.
        return await self._retrying(f"reading {sender_id}", lambda: super(
            CompactSQLTrackerStore, self).retrieve(sender_id))

    async def _retrying(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        """``operation``, again while the database is away, for up to ``SAVE_RETRY_SECONDS``."""
        deadline, delay = time.monotonic() + SAVE_RETRY_SECONDS, 0.25
        while True:
            try:
                return await operation()
            except DBAPIError as error:
                if not (error.connection_invalidated or _is_connection_error(error)) \
                        or time.monotonic() + delay > deadline:
                    raise
                logger.warning("the tracker store's database is away (%s); %s again in "
                               "%.2f s", type(error.orig).__name__, what, delay)
                self.engine.dispose()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)


def _is_connection_error(error: DBAPIError) -> bool:
    """An error of the connection (the server went away), not of the statement."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    return isinstance(error, (OperationalError, InterfaceError))
