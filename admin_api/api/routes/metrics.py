"""Monitoring: JSON summaries over a window for people, Prometheus text for machines."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlmodel import Session, select

from admin_api import metrics
from admin_api.api.deps import Caller, get_session, get_tracker, require_staff
from admin_api.api.paging import Window
from admin_api.models import Feedback, utcnow
from admin_api.tracker import TrackerStore
from common.config import get_settings
from common.db import get_engine

router = APIRouter(tags=["metrics"])
DEFAULT_WINDOW = timedelta(days=7)
PROMETHEUS_WINDOW = timedelta(hours=24)

REGISTRY = CollectorRegistry()
REQUESTS = Counter("helpdesk_api_requests_total", "Admin API requests",
                   ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("helpdesk_api_request_seconds", "Admin API request latency", ["route"],
                    registry=REGISTRY)


def summary_for(session: Session, store: TrackerStore, since: Any, until: Any) -> dict:
    turns = store.turns(since=since, until=until)
    feedback = session.exec(select(Feedback).where(Feedback.created_at >= since,
                                                   Feedback.created_at < until)).all()
    return {"since": since, "until": until, **metrics.summarize(turns, feedback)}


@router.get("/api/v1/metrics/summary")
def summary(window: Window = Depends(), session: Session = Depends(get_session),
            store: TrackerStore = Depends(get_tracker),
            _: Caller = Depends(require_staff)) -> dict:
    """Figures over ``since``..``until`` (default: the last 7 days): messages, conversations,
    answer, fallback, clarification and hand-off rates, thumbs up/down, top and failing
    intents, a confidence histogram, answer usage and the same per model id."""
    until = window.until or utcnow()
    since = window.since or until - DEFAULT_WINDOW
    return summary_for(session, store, since, until)


class _ConversationCollector:
    """Conversation figures over the last 24 hours, computed when Prometheus scrapes, at most
    once per ``CACHE_SECONDS`` (several scrapers must not each rescan a day of events)."""

    CACHE_SECONDS = 15.0

    def __init__(self) -> None:
        self.cached: dict[tuple[str, str], tuple[float, dict]] = {}
        self.lock = threading.Lock()

    def figures(self) -> dict:
        settings = get_settings()
        key = (settings.database_url, settings.tracker_store_url)
        with self.lock:
            now = time.monotonic()
            hit = self.cached.get(key)
            if hit is None or now - hit[0] > self.CACHE_SECONDS:
                until = utcnow()
                with Session(get_engine()) as session:
                    hit = (now, summary_for(session, get_tracker(), until - PROMETHEUS_WINDOW,
                                            until))
                self.cached[key] = hit
            return hit[1]

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        figures = self.figures()
        for name in ("messages", "conversations"):
            yield GaugeMetricFamily(f"helpdesk_{name}_24h", f"Customer {name}, last 24 h",
                                    value=figures[name])
        for name in ("answer_rate", "fallback_rate", "clarification_rate", "handoff_rate"):
            yield GaugeMetricFamily(f"helpdesk_{name}_24h", f"{name.replace('_', ' ')}, 24 h",
                                    value=figures[name])
        ratings = GaugeMetricFamily("helpdesk_feedback_24h", "Feedback ratings, last 24 h",
                                    labels=["rating"])
        for rating in ("up", "down"):
            ratings.add_metric([rating], figures["feedback"][rating])
        yield ratings


REGISTRY.register(_ConversationCollector())


@router.get("/metrics", include_in_schema=True, response_class=Response)
def prometheus() -> Response:
    """Prometheus exposition: API request counts and latency, and conversation figures."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
