"""Leases: which process runs a task that must run in exactly one (see
``admin_api/background.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class Lease(SQLModel, table=True):
    """A named task's holder (``host:pid:nonce``) and when its hold lapses unless renewed."""

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=255)
    expires_at: datetime
