"""Signing in and out of the console."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from admin_api.api.deps import CurrentUser, SessionDep
from admin_api.console import sessions
from admin_api.console.pages import PREFIX, render
from admin_api.models import ConsoleSession, User
from common import audit
from common.config import get_settings

router = APIRouter()


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> HTMLResponse:
    return render(request, "sign_in.html")


def _same_origin(request: Request) -> bool:
    """A sign-in posted from another site (login CSRF) is refused; browsers send Origin on
    every POST."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host")


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(request: Request, session: SessionDep,
            token: str = Form(..., max_length=200)) -> Response:
    if not _same_origin(request):
        return render(request, "sign_in.html", status_code=403,
                      message="sign-in refused: the form was posted from another site")
    signed = sessions.sign_in(session, token)
    if signed is None:
        return render(request, "sign_in.html", status_code=401,
                      message="That token is wrong, expired or revoked.")
    row, secret = signed
    audit.record(session, _name(session, row), "console.sign_in", "console_session", row.id)
    session.commit()
    response = RedirectResponse(f"{PREFIX}/answers", status_code=303)
    response.set_cookie(sessions.COOKIE, secret, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/",
                        max_age=int(get_settings().console_session_hours * 3600))
    return response


def _name(session: SessionDep, row: ConsoleSession) -> str:
    user = session.get(User, row.user_id)
    return user.name if user else str(row.user_id)


@router.post("/sign-out")
def sign_out(request: Request, session: SessionDep, caller: CurrentUser) -> Response:
    if caller.console_session_id is not None:
        row = session.get(ConsoleSession, caller.console_session_id)
        if row is not None:
            sessions.sign_out(session, row)
        audit.record(session, caller.name, "console.sign_out", "console_session",
                     caller.console_session_id)
        session.commit()
    response = Response(status_code=204, headers={"HX-Redirect": f"{PREFIX}/sign-in"})
    response.delete_cookie(sessions.COOKIE, path="/")
    return response
