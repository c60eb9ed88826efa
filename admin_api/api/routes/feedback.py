"""Customer feedback: the public intake the widget posts to, and the staff's list of it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from sqlmodel import select

from admin_api import inbox
from admin_api.api.deps import (
    SessionDep,
    StaffUser,
    TrackerDep,
)
from admin_api.api.limits import RateLimit
from admin_api.api.paging import DB_ID_MAX, Page, Paging, Window, paginate, sort_param
from admin_api.models import (
    Answer,
    Feedback,
    FeedbackCreate,
    FeedbackDetail,
    FeedbackRead,
    FeedbackStatus,
    Rating,
    utcnow,
)
from common.config import get_settings

router = APIRouter(prefix="/feedback", tags=["feedback"])
public_rate = RateLimit("feedback", lambda: get_settings().public_rate_per_minute)


@router.post(
    "",
    response_model=FeedbackRead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "The rating of this message was updated"},
               429: {"description": "Too many requests from this client"}},
    dependencies=[Depends(public_rate)],
)
def submit_feedback(
    *,
    payload: FeedbackCreate, response: Response, session: SessionDep,
    store: TrackerDep,
) -> Feedback:
    """Record a rating; rating the same message again replaces the earlier rating.

    Only ids, the rating and the comment are accepted from the client: the customer's text,
    intent and confidence are looked up in the tracker store, so a client cannot forge them.
    A thumbs-down puts the turn in the review inbox.
    """
    if payload.answer_id is not None and session.get(Answer, payload.answer_id) is None:
        raise HTTPException(422, f"unknown answer id {payload.answer_id}")
    existing = session.exec(
        select(Feedback).where(
            Feedback.session_id == payload.session_id, Feedback.message_id == payload.message_id
        )
    ).first()
    if existing is not None:
        existing.rating = payload.rating
        existing.comment = payload.comment
        existing.answer_id = payload.answer_id
        existing.created_at = utcnow()
        record = existing
        response.status_code = status.HTTP_200_OK
    else:
        record = Feedback(**payload.dict(exclude={"rating"}), rating=payload.rating.value)
    session.add(record)
    session.flush()
    inbox.attach_feedback(session, store, record)
    session.commit()
    session.refresh(record)
    return record


@router.get("", response_model=Page[FeedbackDetail])
def list_feedback(
    *,
    rating: Rating | None = None,
    status_: FeedbackStatus | None = Query(None, alias="status"),
    answer_id: int | None = Query(None, ge=1, le=DB_ID_MAX),
    window: Window = Depends(),
    sort: str = sort_param("-created_at", ("created_at", "id")),
    paging: Paging = Depends(),
    session: SessionDep,
    _: StaffUser,
) -> dict:
    query = select(Feedback)
    if rating is not None:
        query = query.where(Feedback.rating == rating.value)
    if status_ is not None:
        query = query.where(Feedback.status == status_.value)
    if answer_id is not None:
        query = query.where(Feedback.answer_id == answer_id)
    query = window.within(query, Feedback.created_at)
    return paginate(session, query, paging, Feedback, sort)
