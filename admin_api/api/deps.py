"""Request dependencies: a database session per request, and who is calling.

Every route that writes depends on ``require_staff`` or ``require_admin``; the auth matrix test
walks the app's routes, so a write route without one of them fails the suite.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlmodel import Session

from admin_api.console import sessions
from admin_api.core import security
from admin_api.models import Role, User, utcnow
from admin_api.tracker import TrackerStore
from common.config import get_settings
from common.db import get_engine

LAST_USED_RESOLUTION = timedelta(minutes=1)


def get_session() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


@dataclass(frozen=True)
class Caller:
    """The authenticated person behind a request: by bearer token (the API) or by a console
    session (the browser; ``csrf_token`` is what its pages send back on writes)."""

    user_id: int
    name: str
    role: Role
    token_id: int | None = None
    console_session_id: int | None = None
    csrf_token: str | None = None


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message,
                         headers={"WWW-Authenticate": "Bearer"})


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _console_caller(request: Request, session: Session, secret: str) -> Caller:
    found = sessions.lookup(session, secret)
    if found is None:
        raise _unauthorized("the console session has ended or expired: sign in again")
    user, row = found
    if request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get(sessions.CSRF_HEADER, ""), row.csrf_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "missing or wrong CSRF token (X-CSRF-Token): reload the page")
    assert user.id is not None and row.id is not None
    return Caller(user_id=user.id, name=user.name, role=Role(user.role),
                  console_session_id=row.id, csrf_token=row.csrf_token)


def current_caller(request: Request, session: Session = Depends(get_session)) -> Caller:
    """A bearer token, or else the console's session cookie (with its CSRF token on writes):
    one authentication for the API and the console, so both share the role checks."""
    header = request.headers.get("authorization")
    if not header and (cookie := request.cookies.get(sessions.COOKIE)):
        return _console_caller(request, session, cookie)
    if not header:
        raise _unauthorized("missing bearer token (Authorization: Bearer <token>)")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <token>'")
    found = security.authenticate(session, secret.strip())
    if found is None:
        raise _unauthorized("invalid, expired or revoked token")
    user, token = found
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.add(token)
        session.commit()
    assert user.id is not None and token.id is not None
    return Caller(user_id=user.id, name=user.name, role=Role(user.role), token_id=token.id)


def _require(*roles: Role) -> Callable[..., Caller]:
    def check(caller: Caller = Depends(current_caller)) -> Caller:
        if caller.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"this needs the {' or '.join(r.value for r in roles)} role")
        return caller

    return check


require_staff = _require(Role.staff, Role.admin)
require_admin = _require(Role.admin)


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user with id {user_id}")
    return user


def get_tracker() -> TrackerStore:
    return TrackerStore(get_settings().tracker_store_url)


# The dependencies as the routes name them (the FastAPI template's style): a parameter's type
# says what it gets, and a write route's caller type says which role it needs.
SessionDep = Annotated[Session, Depends(get_session)]
TrackerDep = Annotated[TrackerStore, Depends(get_tracker)]
CurrentUser = Annotated[Caller, Depends(current_caller)]
StaffUser = Annotated[Caller, Depends(require_staff)]
AdminUser = Annotated[Caller, Depends(require_admin)]
