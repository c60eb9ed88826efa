"""The model registry, promotion and rollback, and the model server Rasa pulls from.

Rasa's ``endpoints.yml`` ``models:`` section points at ``/api/v1/models/production/file``: Rasa
sends the ETag of the model it has as ``If-None-Match`` and gets 304 until production changes,
then downloads the new archive and swaps it in. Any number of Rasa instances can pull alike.
"""

from __future__ import annotations

import hmac
from pathlib import Path as FilePath

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import FileResponse
from sqlmodel import select

from admin_api import promotion_watch
from admin_api.api.deps import (
    AdminUser,
    SessionDep,
    StaffUser,
    current_caller,
    require_staff,
)
from admin_api.api.paging import DB_ID_MAX, Page, Paging, not_found, paginate, sort_param
from admin_api.models import (
    ModelDetail,
    ModelRead,
    ModelStatus,
    ModelVersion,
    WatchRead,
    WatchUpdate,
)
from common.config import get_settings
from learning import registry

router = APIRouter(prefix="/models", tags=["models"])
ModelKey = Path(..., ge=1, le=DB_ID_MAX)


@router.get("", response_model=Page[ModelRead])
def list_models(*, status_: ModelStatus | None = Query(None, alias="status"),
                sort: str = sort_param("-created_at", ("created_at", "promoted_at", "id")),
                paging: Paging = Depends(), session: SessionDep,
                _: StaffUser) -> dict:
    query = select(ModelVersion)
    if status_ is not None:
        query = query.where(ModelVersion.status == status_.value)
    return paginate(session, query, paging, ModelVersion, sort)


@router.get("/watch", response_model=WatchRead)
def read_watch(*, session: SessionDep, _: StaffUser) -> WatchRead:
    """How production is watched after a promotion (`admin_api/promotion_watch.py`)."""
    settings = get_settings()
    return WatchRead(auto_rollback=promotion_watch.auto_rollback(session),
                     margin=settings.promotion_watch_margin,
                     hours=settings.promotion_watch_hours,
                     min_messages=settings.promotion_watch_min_messages)


@router.put("/watch", response_model=WatchRead)
def update_watch(*, body: WatchUpdate, session: SessionDep, caller: AdminUser) -> WatchRead:
    """Turn the automatic rollback on or off (audited); the next check uses it."""
    promotion_watch.set_auto_rollback(session, caller.name, body.auto_rollback)
    session.commit()
    return read_watch(session=session, _=caller)


def _rasa_or_staff(request: Request, session: SessionDep,
                   x_rasa_token: str | None = Header(None, max_length=200,
                                                     description="Rasa's own API token")
                   ) -> str:
    """Rasa authenticates with its own API token (``X-Rasa-Token``); people with a bearer
    token. A wrong Rasa token is a 401 like a wrong bearer token."""
    expected = get_settings().resolved_rasa_token
    if x_rasa_token is not None:
        if expected and hmac.compare_digest(x_rasa_token.encode(), expected.encode()):
            return "rasa"
        raise HTTPException(401, "invalid Rasa token")
    caller = current_caller(request, session)
    return require_staff(caller).name


@router.get("/production/file", response_class=FileResponse,
            responses={200: {"content": {"application/gzip": {}}},
                       304: {"description": "The caller already has this model (ETag)"},
                       401: {"description": "Neither Rasa's token nor a bearer token"},
                       403: {"description": "The caller's role may not do this"},
                       404: {"description": "No production model yet"}})
def production_file(*, if_none_match: str | None = Header(None),
                    session: SessionDep,
                    _: str = Depends(_rasa_or_staff)) -> Response:
    """The production model archive, for Rasa's model server protocol (ETag = SHA-256)."""
    entry = registry.production(session)
    if entry is None:
        raise HTTPException(404, "no production model yet")
    etag = entry.sha256
    headers = {"ETag": etag, "filename": entry.file_name, "X-Model-Id": entry.model_id}
    if if_none_match and if_none_match.strip('"') == etag:
        return Response(status_code=304, headers=headers)
    path = FilePath(entry.path)
    if not path.is_file():
        raise HTTPException(404, f"the production model's archive is missing: {entry.file_name}")
    return FileResponse(path, media_type="application/gzip", headers=headers)


@router.get("/{model_key}", response_model=ModelDetail)
def read_model(*, model_key: int = ModelKey, session: SessionDep,
               _: StaffUser) -> ModelVersion:
    """One model with its maturity report (markdown), metrics and gate decision."""
    entry = session.get(ModelVersion, model_key)
    if entry is None:
        raise not_found("model", model_key)
    return entry


@router.post("/{model_key}/promote", response_model=ModelRead,
             responses={409: {"description": "The model's archive is gone"}})
def promote_model(*, model_key: int = ModelKey, session: SessionDep,
                  caller: AdminUser) -> ModelVersion:
    """Serve this model (also a rejected or archived one: an admin's decision, audited).
    Rasa picks it up at its next pull, within a few seconds, without a restart."""
    entry = session.get(ModelVersion, model_key)
    if entry is None:
        raise not_found("model", model_key)
    registry.promote(session, entry, caller.name, reason="by hand")
    session.commit()
    session.refresh(entry)
    return entry


@router.post("/rollback", response_model=ModelRead,
             responses={409: {"description": "Nothing to roll back to"}})
def rollback(*, session: SessionDep,
             caller: AdminUser) -> ModelVersion:
    """Serve again the model that was in production before the current one."""
    entry = registry.rollback(session, caller.name)
    session.commit()
    session.refresh(entry)
    return entry
