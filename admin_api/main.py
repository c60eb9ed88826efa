"""The FastAPI application (``uvicorn admin_api.main:app``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from admin_api import background, monitoring, promotion_watch, proposals, retention, turn_facts
from admin_api.api import errors, openapi
from admin_api.api.limits import BodySizeLimit
from admin_api.api.routes import (
    answers,
    audit,
    conversations,
    feedback,
    handoff,
    health,
    inbox,
    jobs,
    metrics,
    registry,
    simulator,
    thresholds,
    training,
    users,
    widget,
)
from admin_api.api.unicode import UnicodeGuard
from admin_api.console import pages as console_pages
from admin_api.console import try_it
from admin_api.console.router import router as console_router
from common.config import get_settings
from nlu.privacy import redact_secrets_in_logs

API_PREFIX = "/api/v1"  # the versioned API; health, metrics and the pages sit at the root
API_ROUTERS = (feedback, answers, inbox, training, conversations, handoff, metrics, users, audit,
               jobs, registry, thresholds, simulator)
ROOT_ROUTERS = (health, monitoring, widget)


class QuietModelPolls(logging.Filter):
    """Rasa asks for the production model every 2 seconds; an unchanged answer (304) is not
    worth an access-log line, a download is."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) >= 5 and args[4] == 304
                    and "/api/v1/models/production/file" in str(args[2]))


logging.getLogger("uvicorn.access").addFilter(QuietModelPolls())
redact_secrets_in_logs()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    stop = threading.Event()

    def periodic_tasks(tasks_stop: threading.Event) -> None:
        retention.start_purger(tasks_stop)
        proposals.start_worker(tasks_stop, try_it.live_retriever())
        promotion_watch.start_watch(tasks_stop)
        turn_facts.start(tasks_stop)

    lease = background.start(stop, periodic_tasks)
    yield
    stop.set()
    lease.join(timeout=5)  # lets the lease go, so a standby takes over at once


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(
        title="Lepton Helpdesk admin API",
        version="0.2.0",
        description="Curated answers, the review inbox, conversations and hand-off, training "
                    "data, people and monitoring. Writes need a bearer token "
                    "(`helpdesk users create`); staff curate and triage, admins also manage "
                    "people and settings.",
        lifespan=lifespan,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origin_list,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Content-Type", "Authorization"],
    )
    app.add_middleware(UnicodeGuard)  # inside the size limit: it reads whole bodies
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes,
                       per_path={"/api/v1/answers/import": settings.max_import_bytes})
    app.middleware("http")(monitoring.count_requests)
    for module in API_ROUTERS:
        app.include_router(module.router, prefix=API_PREFIX)
    for module in ROOT_ROUTERS:
        app.include_router(module.router)
    app.include_router(console_router)
    errors.install(app)
    console_pages.install(app)  # after the API's: console paths get HTML refusals
    openapi.install(app)
    return app


app = create_app()
