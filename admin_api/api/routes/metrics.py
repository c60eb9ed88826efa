"""Monitoring for people: JSON figures over a window (for machines: ``admin_api.monitoring``).
The definitions (what each rate is a share of) are ``admin_api.metrics``'s."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from fastapi import APIRouter, Depends, Query
from pydantic import Field as PField

from admin_api import metrics, turn_facts
from admin_api.api.deps import (
    SessionDep,
    StaffUser,
    TrackerDep,
)
from admin_api.api.paging import Window
from admin_api.core.schema import ApiModel
from admin_api.models import utcnow

router = APIRouter(prefix="/metrics", tags=["metrics"])
DEFAULT_WINDOW = timedelta(days=7)


@router.get("/summary")
def summary(*, window: Window = Depends(), session: SessionDep,
            store: TrackerDep,
            _: StaffUser) -> dict:
    """Figures over ``since``..``until`` (default: the last 7 days): messages, conversations,
    answered, clarified and fallback rates (shares of customer messages), the hand-off rate
    (a share of conversations), the low-confidence and thumbs-down rates (per message), thumbs
    up/down, reply latency p50/p95 in ms, top and failing intents, a confidence histogram,
    answer usage and the same per model id. ``backlog`` is null, or (the first start on a large
    store, folded in the background) how far the figures count."""
    until = window.until or utcnow()
    since = window.since or (until - DEFAULT_WINDOW if until > datetime.min + DEFAULT_WINDOW
                             else datetime.min)
    return metrics.summary_for(session, store, since, until)


class Day(ApiModel):
    """One UTC day's figures. The ``*_band`` pairs are the range the share was expected in
    from the 14 days before (null without 7 days of history); ``*_drift`` flags a day
    outside it."""

    day: date
    messages: int
    conversations: int
    answer_rate: float = PField(..., description="Answered customer messages / messages")
    clarification_rate: float = PField(..., description="Clarified messages / messages")
    fallback_rate: float = PField(..., description="Fallbacks / messages")
    low_confidence_rate: float = PField(..., description="Messages under the review "
                                                         "confidence threshold / messages")
    handoff_rate: float = PField(..., description="Conversations handed to a person / "
                                                  "conversations")
    thumbs_up: int
    thumbs_down: int
    fallback_rate_band: list[float] | None
    fallback_rate_drift: bool
    low_confidence_rate_band: list[float] | None
    low_confidence_rate_drift: bool


@router.get("/daily", response_model=list[Day])
def daily(*, first: date = Query(..., description="First UTC day (YYYY-MM-DD)"),
          last: date = Query(..., description="Last UTC day, inclusive"),
          session: SessionDep, store: TrackerDep, _: StaffUser) -> list[dict]:
    """Per-day figures from ``first`` to ``last`` with the drift of the fallback and
    low-confidence shares against their trailing 14-day band."""
    metrics.check_days(first, last)
    turn_facts.ensure_fresh(session, store)
    return metrics.daily(session, first, last)
