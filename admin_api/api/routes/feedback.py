"""Public feedback intake: the widget posts a thumbs up or down for one bot answer."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Response, status
from sqlmodel import Session, select

from admin_api.api.deps import get_session
from admin_api.models import Answer, Feedback, FeedbackCreate, FeedbackRead, utcnow

router = APIRouter(prefix="/api/v1/feedback", tags=["feedback"])


@router.post(
    "",
    response_model=FeedbackRead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "The rating of this message was updated"}},
)
def submit_feedback(
    payload: FeedbackCreate, response: Response, session: Session = Depends(get_session)
) -> Feedback:
    """Record a rating; rating the same message again replaces the earlier rating.

    Only ids, the rating and the comment are accepted from the client: the customer's text,
    intent and confidence are looked up server-side, so a client cannot forge them.
    """
    if payload.answer_id is not None and session.get(Answer, payload.answer_id) is None:
        raise HTTPException(422,
                            f"unknown answer id {payload.answer_id}")
    existing = session.exec(
        select(Feedback).where(
            Feedback.session_id == payload.session_id, Feedback.message_id == payload.message_id
        )
    ).first()
    if existing is not None:
        existing.rating = payload.rating.value
        existing.comment = payload.comment
        existing.answer_id = payload.answer_id
        existing.created_at = utcnow()
        record = existing
        response.status_code = status.HTTP_200_OK
    else:
        record = Feedback(**payload.dict(exclude={"rating"}), rating=payload.rating.value)
    session.add(record)
    session.commit()
    session.refresh(record)
    return record
