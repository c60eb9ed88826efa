"""The staff console's own tables: signed-in sessions, who holds a hand-off, canned replies."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from common.db import utcnow


class ConsoleSession(SQLModel, table=True):
    """A browser signed in to the console. Kept in the admin database (not in the process) so
    that several API processes behind a proxy share it. Only the cookie secret's SHA-256 is
    stored; the CSRF token is per session and sent back on every write."""

    __tablename__ = "console_session"
    id: Optional[int] = Field(default=None, primary_key=True)
    secret_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    user_id: int = Field(foreign_key="user.id", index=True)
    # The token signed in with: revoking it (a leaked token) ends the session too.
    token_id: Optional[int] = Field(default=None, foreign_key="api_token.id")
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    last_seen_at: datetime = Field(default_factory=utcnow, index=True)
    ended_at: Optional[datetime] = None


class HandoffClaim(SQLModel, table=True):
    """The one staff member holding a paused conversation. The holder's console refreshes
    ``last_seen_at`` while the conversation is open; a claim not seen for the configured time
    lapses, and the conversation is back in the queue for anyone."""

    __tablename__ = "handoff_claim"
    session_id: str = Field(primary_key=True, max_length=255)
    user_id: int = Field(foreign_key="user.id")
    user_name: str = Field(max_length=64)
    claimed_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class CannedReply(SQLModel, table=True):
    """A reply staff send often during hand-offs, managed by staff in the console."""

    __tablename__ = "canned_reply"
    id: Optional[int] = Field(default=None, primary_key=True)
    title: str = Field(max_length=100)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_by: Optional[str] = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
