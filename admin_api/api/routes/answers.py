"""Read access to published answers: public content, read by the action server over HTTP.

``/changes`` is the feed the retriever polls to stay live (see ``admin_api/crud.py``); drafts
never leave the database through it, only their ids (as removals). Curation (create, edit,
publish, revisions) is added by the admin API issue, behind auth.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlmodel import Session, select

from admin_api import crud
from admin_api.api.deps import get_session
from admin_api.models import Answer, AnswerChanges, AnswerRead
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


@router.get("/changes", response_model=AnswerChanges)
def answer_changes(
    since: int = Query(0, ge=0, le=2**62, description="The last answers version already seen."),
    limit: int = Query(crud.CHANGES_PAGE, ge=1, le=5000),
    session: Session = Depends(get_session),
) -> dict:
    """Published answers to (re)index and ids to drop, written after version ``since``."""
    return crud.answer_changes(session, since, limit)
