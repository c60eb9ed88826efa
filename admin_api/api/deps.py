"""Request dependencies: a database session per request (auth arrives with the admin API issue)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlmodel import Session

from admin_api.core.db import get_engine


def get_session() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session
