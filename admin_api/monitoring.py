"""Monitoring for machines: the Prometheus counters of every request and the conversation
figures, in one module that the app's middleware and the ``/metrics`` route share."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlmodel import Session

from admin_api.api.deps import get_tracker
from admin_api.metrics import reply_latency, summary_for
from common.config import get_settings
from common.db import get_engine, utcnow

PROMETHEUS_WINDOW = timedelta(hours=24)

REGISTRY = CollectorRegistry()
REQUESTS = Counter("helpdesk_api_requests_total", "Admin API requests",
                   ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram("helpdesk_api_request_seconds", "Admin API request latency", ["route"],
                    registry=REGISTRY)


async def count_requests(request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Middleware: one count and one latency sample per request, labelled by route template
    (never the raw path, whose ids would make the label set unbounded)."""
    started = time.perf_counter()
    response = await call_next(request)
    route = getattr(request.scope.get("route"), "path", "unmatched")
    REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    LATENCY.labels(route).observe(time.perf_counter() - started)
    return response


class _ConversationCollector:
    """Conversation figures over the last 24 hours (reply latency also over the last hour),
    computed when Prometheus scrapes, at most once per ``CACHE_SECONDS`` (several scrapers
    must not each recount). The alerting rules in ``prometheus/`` are written against these
    names."""

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
                    figures = summary_for(session, get_tracker(), until - PROMETHEUS_WINDOW,
                                          until)
                    figures["reply_latency_ms_1h"] = reply_latency(
                        session, until - timedelta(hours=1), until)
                hit = (now, figures)
                self.cached[key] = hit
            return hit[1]

    def collect(self):  # prometheus_client's collector protocol
        figures = self.figures()
        for name in ("messages", "conversations"):
            yield GaugeMetricFamily(f"helpdesk_{name}_24h", f"Customer {name}, last 24 h",
                                    value=figures[name])
        for name, unit in (("answer_rate", "customer message"),
                           ("fallback_rate", "customer message"),
                           ("clarification_rate", "customer message"),
                           ("low_confidence_rate", "customer message"),
                           ("thumbs_down_rate", "customer message"),
                           ("handoff_rate", "conversation")):
            yield GaugeMetricFamily(f"helpdesk_{name}_24h",
                                    f"{name.replace('_', ' ')} per {unit}, last 24 h",
                                    value=figures[name])
        ratings = GaugeMetricFamily("helpdesk_feedback_24h", "Feedback ratings, last 24 h",
                                    labels=["rating"])
        for rating in ("up", "down"):
            ratings.add_metric([rating], figures["feedback"][rating])
        yield ratings
        for window, values in (("24h", figures["reply_latency_ms"]),
                               ("1h", figures["reply_latency_ms_1h"])):
            latency = GaugeMetricFamily(
                f"helpdesk_reply_latency_seconds_{window}",
                f"From a customer's message to the bot's first reply, last {window} "
                "(NaN without replies)", labels=["quantile"])
            for quantile, name in (("0.5", "p50"), ("0.95", "p95")):
                value = values[name]
                latency.add_metric([quantile], float("nan") if value is None else value / 1000)
            yield latency


CONVERSATIONS = _ConversationCollector()
REGISTRY.register(CONVERSATIONS)
router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=True, response_class=Response)
def prometheus() -> Response:
    """Prometheus exposition: API request counts and latency, and conversation figures.

    Under several workers (``helpdesk serve --profile scaled`` sets prometheus_client's
    ``PROMETHEUS_MULTIPROC_DIR``), the counts are every worker's, summed from their files."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(CONVERSATIONS)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
