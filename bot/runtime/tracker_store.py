"""Rasa's SQL tracker store, minus the sentence vectors the classifier hands to the retriever.

The intent classifier puts the message's sentence vector into the parse data
(``nlu.handover``) so that the action server need not encode the same text again. It is
needed only during the turn, while Rasa calls the action server with the tracker in memory.
Stored, it would add about a kilobyte to every customer message, go to the event broker and
into backups, and be one more copy of something derived from the customer's words for erasure
to find. So this store removes it from every customer message before saving (and before the
event broker sees the events); the rest is Rasa's ``SQLTrackerStore`` unchanged, on SQLite or
PostgreSQL.
"""

from __future__ import annotations

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from nlu.handover import PARSE_KEY


def strip_vectors(tracker: DialogueStateTracker) -> int:
    """Remove the handed-over vectors from the tracker's customer messages; how many."""
    removed = 0
    for event in tracker.events:
        if isinstance(event, UserUttered) and PARSE_KEY in event.parse_data:
            del event.parse_data[PARSE_KEY]  # type: ignore[misc]
            removed += 1
    return removed


class CompactSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` that never stores a handed-over sentence vector."""

    async def save(self, tracker: DialogueStateTracker) -> None:
        strip_vectors(tracker)
        await super().save(tracker)
