"""The audit log, for admins: every write, who made it and when."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlmodel import select

from admin_api.api.deps import AdminUser, SessionDep
from admin_api.api.paging import Page, Paging, Window, paginate, sort_param
from admin_api.models import AuditEntry, AuditEntryRead

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=Page[AuditEntryRead])
def list_audit(
    *,
    actor: str | None = Query(None, max_length=64),
    action: str | None = Query(None, max_length=64),
    entity_id: str | None = Query(None, max_length=128),
    window: Window = Depends(),
    sort: str = sort_param("-created_at", ("created_at", "id")),
    paging: Paging = Depends(),
    session: SessionDep,
    _: AdminUser,
) -> dict:
    query = select(AuditEntry)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    query = window.within(query, AuditEntry.created_at)
    return paginate(session, query, paging, AuditEntry, sort)
