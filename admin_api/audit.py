"""The audit log: every write through the API, recorded in the write's own transaction, so
there is never a change without its entry nor an entry without its change."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from admin_api.models import AuditEntry


def record(session: Session, actor: str, action: str, entity: str,
           entity_id: object = None, **details: Any) -> None:
    session.add(AuditEntry(actor=actor, action=action, entity=entity,
                           entity_id=None if entity_id is None else str(entity_id),
                           details=details))
