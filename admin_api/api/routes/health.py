"""Liveness and readiness: ``helpdesk serve`` and load balancers poll this."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from admin_api.api.deps import get_session

router = APIRouter(tags=["health"])


@router.get("/health")
def health(session: Session = Depends(get_session)) -> JSONResponse:
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        return JSONResponse(
            {"status": "error", "database": f"unreachable: {type(error).__name__}"},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok"})
