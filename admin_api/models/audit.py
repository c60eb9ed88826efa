"""The audit log as the API shows it (the table: ``common.audit``)."""

from __future__ import annotations

from datetime import datetime

from admin_api.core.schema import ApiModel


class AuditEntryRead(ApiModel):
    id: int
    created_at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str | None
    details: dict

    class Config:
        orm_mode = True
