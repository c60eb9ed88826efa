"""The audit log: every write through the API, recorded in the write's own transaction, so
there is never a change without its entry nor an entry without its change."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel

from common.db import utcnow


class AuditEntry(SQLModel, table=True):
    """One write through the API: who did what to which thing, written in the same
    transaction as the write itself."""

    __tablename__ = "audit_log"
    id: Optional[int] = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=64, index=True)
    action: str = Field(max_length=64, index=True)
    entity: str = Field(max_length=32)
    entity_id: Optional[str] = Field(default=None, max_length=128)
    details: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def record(session: Session, actor: str, action: str, entity: str,
           entity_id: object = None, **details: Any) -> None:
    session.add(AuditEntry(actor=actor, action=action, entity=entity,
                           entity_id=None if entity_id is None else str(entity_id),
                           details=details))
