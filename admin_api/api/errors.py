"""Domain refusals (``common.errors``) as HTTP responses, in one place: services never raise
``HTTPException``, so they stay usable from the CLI and the worker."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from common.errors import Conflict, DomainError, Invalid, NotFound

STATUS = {NotFound: 404, Conflict: 409, Invalid: 422}


def status_of(error: DomainError) -> int:
    for kind, code in STATUS.items():
        if isinstance(error, kind):
            return code
    return 400


def as_json(error: DomainError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=status_of(error))


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def refused(_: Request, error: DomainError) -> JSONResponse:
        return as_json(error)
