"""Monitoring for people: JSON summaries over a window (for machines: ``admin_api.monitoring``)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends

from admin_api import metrics
from admin_api.api.deps import (
    SessionDep,
    StaffUser,
    TrackerDep,
)
from admin_api.api.paging import Window
from admin_api.models import utcnow

router = APIRouter(prefix="/metrics", tags=["metrics"])
DEFAULT_WINDOW = timedelta(days=7)


@router.get("/summary")
def summary(*, window: Window = Depends(), session: SessionDep,
            store: TrackerDep,
            _: StaffUser) -> dict:
    """Figures over ``since``..``until`` (default: the last 7 days): messages, conversations,
    answer, fallback, clarification and hand-off rates, thumbs up/down, top and failing
    intents, a confidence histogram, answer usage and the same per model id."""
    until = window.until or utcnow()
    since = window.since or until - DEFAULT_WINDOW
    return metrics.summary_for(session, store, since, until)
