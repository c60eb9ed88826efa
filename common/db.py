"""Database engine and sessions; one engine per URL, shared by the app and the CLI."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import String, event
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.types import TypeDecorator
from sqlmodel import create_engine

from common.config import get_settings

DB_ID_MAX = 2**31 - 1  # ids are 32-bit integer columns on every database we support


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class EnumText(TypeDecorator):
    """A status column typed by its enum: stored as plain text (no database ENUM type, so
    adding a member needs no migration), read back as the enum's member, and refusing a value
    that is not one on write."""

    impl = String
    cache_ok = True

    def __init__(self, enum_type: type[enum.Enum], length: int) -> None:
        super().__init__(length)
        self.enum_type = enum_type

    def process_bind_param(self, value: object, dialect: Dialect) -> str | None:
        return None if value is None else str(self.enum_type(value).value)

    def process_result_value(self, value: object, dialect: Dialect) -> enum.Enum | None:
        return None if value is None else self.enum_type(value)


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url``, or for the configured database; one per URL per process."""
    return _engine_for(url or get_settings().database_url)


def clear_engines() -> None:
    """Forget cached engines (tests switch databases; a dropped database must not be reused)."""
    _engine_for.cache_clear()


@lru_cache
def _engine_for(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            # WAL lets the action server and the API read while the CLI writes.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)

