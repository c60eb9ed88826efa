"""Liveness (``/health``) and readiness (``/ready``): ``helpdesk serve`` and load balancers
poll these."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from admin_api.api.deps import SessionDep, TrackerDep
from admin_api.migrate import alembic_config

router = APIRouter(tags=["health"])


@router.get("/health")
def health(*, session: SessionDep) -> JSONResponse:
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        return JSONResponse(
            {"status": "error", "database": f"unreachable: {type(error).__name__}"},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/ready")
def ready(*, session: SessionDep,
          store: TrackerDep) -> JSONResponse:
    """Ready when the database is at the latest migration and the tracker store answers."""
    checks: dict[str, str] = {}
    try:
        connection = session.connection()
        current = MigrationContext.configure(connection).get_current_revision()
        head = ScriptDirectory.from_config(alembic_config(str(connection.engine.url))
                                           ).get_current_head()
        checks["database"] = "ok" if current == head else f"at {current}, needs {head}"
    except SQLAlchemyError as error:
        checks["database"] = f"unreachable: {type(error).__name__}"
    try:
        checks["tracker_store"] = "ok" if store.exists() else "empty (Rasa not started yet)"
    except SQLAlchemyError as error:
        checks["tracker_store"] = f"unreachable: {type(error).__name__}"
    ok = checks["database"] == "ok" and not checks["tracker_store"].startswith("unreachable")
    return JSONResponse({"status": "ok" if ok else "not ready", **checks},
                        status_code=200 if ok else 503)
