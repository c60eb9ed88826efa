"""Console sign-in: a user's API token, once, buys a server-side session behind a cookie.

The session lives in the admin database (several API processes share it); the browser holds
only a random cookie secret (HttpOnly, SameSite=Strict, Secure over https), whose SHA-256 is
what is stored. Each session has its own CSRF token, which every write sends back in the
``X-CSRF-Token`` header (htmx sends it from the page): a cookie alone never authorises a write.
Tokens are never kept in browser storage.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlmodel import Session, select

from admin_api.core import security
from admin_api.models import ApiToken, ConsoleSession, User, utcnow
from common.config import get_settings

COOKIE = "helpdesk_console"
CSRF_HEADER = "x-csrf-token"
SEEN_RESOLUTION = timedelta(seconds=20)


def sign_in(session: Session, token: str) -> tuple[ConsoleSession, str] | None:
    """A new console session for the token's user, and the cookie secret; None for a wrong,
    expired or revoked token. The caller commits."""
    found = security.authenticate(session, token.strip())
    if found is None:
        return None
    user, used = found
    assert user.id is not None
    secret = secrets.token_urlsafe(32)
    hours = get_settings().console_session_hours
    row = ConsoleSession(secret_hash=security.hash_token(secret), user_id=user.id,
                         token_id=used.id,
                         csrf_token=secrets.token_urlsafe(32),
                         expires_at=utcnow() + timedelta(hours=hours))
    session.add(row)
    session.flush()
    return row, secret


def lookup(session: Session, secret: str) -> tuple[User, ConsoleSession] | None:
    """The live session behind a cookie and its active user, or None; refreshes the
    session's "last seen" (staff presence) at a coarse resolution."""
    if not secret or len(secret) > 200:
        return None
    row = session.exec(select(ConsoleSession).where(
        ConsoleSession.secret_hash == security.hash_token(secret))).first()
    now = utcnow()
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    token = session.get(ApiToken, row.token_id) if row.token_id is not None else None
    if token is not None and (token.revoked_at is not None or (
            token.expires_at is not None and token.expires_at <= now)):
        return None  # the token it was bought with was revoked or ran out
    if now - row.last_seen_at > SEEN_RESOLUTION:
        row.last_seen_at = now
        session.add(row)
        session.commit()
    return user, row


def sign_out(session: Session, row: ConsoleSession) -> None:
    row.ended_at = utcnow()
    session.add(row)
