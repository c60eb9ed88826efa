"""The retriever's decision thresholds: staff read them, admins change them (the console's
threshold simulator saves through here). A saved setting reaches every action server with
the answers feed within a poll, with no retraining and no restart."""

from __future__ import annotations

from fastapi import APIRouter, Query

from admin_api import thresholds
from admin_api.api.deps import AdminUser, SessionDep, StaffUser
from admin_api.models import ThresholdsRead, ThresholdsUpdate

router = APIRouter(prefix="/thresholds", tags=["thresholds"])


@router.get("", response_model=ThresholdsRead)
def read_thresholds(*, session: SessionDep, _: StaffUser) -> ThresholdsRead:
    """The setting in force (the first read of a new database seeds it from the thresholds
    file)."""
    return thresholds.read(thresholds.in_force(session))


@router.get("/history", response_model=list[ThresholdsRead])
def threshold_history(*, limit: int = Query(20, ge=1, le=200), session: SessionDep,
                      _: StaffUser) -> list[ThresholdsRead]:
    """The newest saved settings first."""
    thresholds.in_force(session)
    return thresholds.history(session, limit)


@router.put("", response_model=ThresholdsRead)
def save_thresholds(*, body: ThresholdsUpdate, session: SessionDep,
                    caller: AdminUser) -> ThresholdsRead:
    """Put new thresholds in force (audited, with the ones they replace)."""
    row = thresholds.save(session, caller.name, body, body.note)
    session.commit()
    session.refresh(row)
    return thresholds.read(row)
