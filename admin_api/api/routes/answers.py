"""Read access to published answers: public content, read by the action server over HTTP.

Curation (create, edit, publish, revisions) is added by the admin API issue, behind auth.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session, select

from admin_api.api.deps import get_session
from admin_api.models import Answer, AnswerRead
from retrieval.answers import AnswerStatus

router = APIRouter(prefix="/api/v1/answers", tags=["answers"])


@router.get("/published", response_model=list[AnswerRead])
def published_answers(
    intent: str | None = Query(None, max_length=100, pattern=r"^[a-z][a-z0-9_]*$"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    session: Session = Depends(get_session),
) -> list[Answer]:
    query = select(Answer).where(Answer.status == AnswerStatus.published.value)
    if intent is not None:
        query = query.where(Answer.intent == intent)
    return list(session.exec(query.order_by(Answer.id).offset(offset).limit(limit)).all())
