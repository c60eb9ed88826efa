"""How the console renders: Jinja2 templates (autoescaped), its security headers, its assets,
and refusals as HTML (a sign-in redirect, a 403 page, an error in place of an htmx target)
instead of the API's JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from admin_api.api.deps import Caller
from admin_api.api.errors import as_json, status_of
from common.errors import DomainError

PREFIX = "/console"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
assert TEMPLATES.env.autoescape, "console templates must autoescape"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(request: Request, template: str, caller: Caller | None = None,
           status_code: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    """A page (or, for htmx, the fragment ``template`` names) with the console's headers."""
    response = TEMPLATES.TemplateResponse(
        request, template, {"caller": caller, "path": request.url.path, **context},
        status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})})
    return response


def notice(request: Request, message: str, status_code: int = 200, kind: str = "ok",
           headers: dict[str, str] | None = None) -> HTMLResponse:
    """The one-line result of a write, shown where the write was made."""
    return render(request, "_notice.html", status_code=status_code, headers=headers,
                  message=message, kind=kind)


def _console(request: Request) -> bool:
    return request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/")


def _field_errors(error: RequestValidationError) -> str:
    parts = []
    for entry in error.errors():
        where = ".".join(str(p) for p in entry.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{where}: {entry.get('msg')}" if where else str(entry.get("msg")))
    return "; ".join(parts)


def install(app: FastAPI) -> None:
    """Console paths get HTML refusals; everything else keeps the API's JSON."""

    @app.exception_handler(StarletteHTTPException)
    async def http_refused(request: Request, error: HTTPException) -> Response:
        if not _console(request):
            return await http_exception_handler(request, error)
        if error.status_code == 401:
            target = f"{PREFIX}/sign-in"
            if is_htmx(request):
                return Response(status_code=401, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
        template = "_notice.html" if is_htmx(request) else "error.html"
        return render(request, template, status_code=error.status_code,
                      message=str(error.detail), kind="error")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        if not _console(request):
            return await request_validation_exception_handler(request, error)
        return notice(request, _field_errors(error), status_code=422, kind="error")

    @app.exception_handler(DomainError)
    async def refused(request: Request, error: DomainError) -> Response:
        if not _console(request):
            return as_json(error)
        return notice(request, str(error), status_code=status_of(error), kind="error")
