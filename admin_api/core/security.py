"""Bearer tokens: made with 256 bits of randomness, stored only as SHA-256.

A fast hash is enough here (unlike for passwords): the tokens are random, so there is nothing
to guess from a leaked hash. The short prefix is kept in clear so people can tell tokens apart.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlmodel import Session, select

from admin_api.models import ApiToken, Role, User, utcnow

TOKEN_PREFIX = "lh_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, user: User, name: str = "api",
                expires_in_days: int | None = 90) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the stored row and the secret (shown once)."""
    assert user.id is not None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(secret),
                   prefix=secret[:10], expires_at=expires)
    session.add(row)
    session.flush()
    return row, secret


def authenticate(session: Session, secret: str) -> tuple[User, ApiToken] | None:
    """The active user and live token behind ``secret``, or None."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(secret))).first()
    now = utcnow()
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    return user, token


def create_user(session: Session, name: str, role: Role) -> User:
    user = User(name=name, role=role.value)
    session.add(user)
    session.flush()
    return user


def bootstrap_admin(session: Session) -> str | None:
    """On a database with no users, make the ``admin`` user and return its first token."""
    if session.exec(select(User.id).limit(1)).first() is not None:
        return None
    user = create_user(session, "admin", Role.admin)
    _, secret = issue_token(session, user, name="first-run", expires_in_days=None)
    session.commit()
    return secret
