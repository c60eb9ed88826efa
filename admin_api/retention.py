"""Erasing conversations: on a customer's request, and after the retention period.

A conversation lives in Rasa's tracker store; feedback and review items copy a little of it,
so erasing removes those too, in one place.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from admin_api.core.config import get_settings
from admin_api.core.db import get_engine
from admin_api.models import Feedback, Meta, ReviewItem, utcnow
from admin_api.tracker import TrackerStore

logger = logging.getLogger(__name__)
RETENTION_KEY = "retention_days"


def erase(session: Session, store: TrackerStore, session_id: str) -> dict[str, int]:
    """Remove one conversation and what was copied from it; the caller commits."""
    counts = {
        "feedback": session.execute(delete(Feedback).where(Feedback.session_id == session_id)
                                    ).rowcount,
        "review_items": session.execute(delete(ReviewItem)
                                        .where(ReviewItem.session_id == session_id)).rowcount,
    }
    counts["events"] = store.erase(session_id)
    return counts


def retention_days(session: Session) -> int | None:
    row = session.get(Meta, RETENTION_KEY)
    return int(row.value) if row and row.value else None


def set_retention_days(session: Session, days: int | None) -> None:
    row = session.get(Meta, RETENTION_KEY)
    if days is None:
        if row is not None:
            session.delete(row)
        return
    session.merge(Meta(key=RETENTION_KEY, value=str(days)))


def purge(session: Session, store: TrackerStore) -> list[str]:
    """Erase every conversation older than the retention period; returns their ids."""
    days = retention_days(session)
    if days is None:
        return []
    stale = store.stale_conversations(utcnow() - timedelta(days=days))
    for session_id in stale:
        erase(session, store, session_id)
        session.commit()
    return stale


def start_purger(stop: threading.Event) -> threading.Thread:
    """Purge now and then every ``purge_interval_seconds`` until ``stop`` is set."""
    settings = get_settings()

    def loop() -> None:
        while not stop.is_set():
            try:
                with Session(get_engine()) as session:
                    erased = purge(session, TrackerStore(settings.resolved_tracker_store_url))
                if erased:
                    logger.info("retention: erased %d conversations", len(erased))
            except SQLAlchemyError as error:
                logger.warning("retention purge failed, will retry: %s", error)
            stop.wait(settings.purge_interval_seconds)

    thread = threading.Thread(target=loop, name="retention-purge", daemon=True)
    thread.start()
    return thread
