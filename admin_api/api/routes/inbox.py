"""The review inbox: customer turns the bot may have got wrong, and how staff settle them.

Assigning the right intent creates a training example for the next retraining; linking an
answer adds the customer's words to it as a question variant (live at once); ignoring closes
the item. The inbox scans the tracker store for new turns each time it is listed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import String, cast
from sqlmodel import Session, col, select

from admin_api import inbox
from admin_api.api.deps import (
    SessionDep,
    StaffUser,
    TrackerDep,
)
from admin_api.api.paging import DB_ID_MAX, Page, Paging, Window, not_found, paginate, sort_param
from admin_api.models import (
    AnswerRead,
    AssignIntent,
    FeedbackStatus,
    LinkAnswer,
    ReviewItem,
    ReviewItemRead,
    ReviewReason,
    TrainingExampleRead,
)
from common import audit
from common.config import get_settings
from common.text import INTENT_PATTERN

router = APIRouter(prefix="/inbox", tags=["inbox"])
SETTLED: dict[int | str, dict[str, Any]] = {
    409: {"description": "The review item is already used or ignored"}}
ItemId = Path(..., ge=1, le=DB_ID_MAX)


@router.get("", response_model=Page[ReviewItemRead])
def list_inbox(
    *,
    reason: ReviewReason | None = None,
    status_: FeedbackStatus | None = Query(FeedbackStatus.new, alias="status"),
    intent: str | None = Query(None, max_length=100, pattern=INTENT_PATTERN),
    window: Window = Depends(),
    sort: str = sort_param("-turn_at", ("turn_at", "confidence", "id")),
    paging: Paging = Depends(),
    session: SessionDep,
    store: TrackerDep,
    _: StaffUser,
) -> dict:
    """New items by default, newest first; ``status`` and ``reason`` filter."""
    inbox.sync(session, store, get_settings().review_confidence_below)
    query = select(ReviewItem)
    if reason is not None:
        query = query.where(cast(col(ReviewItem.reasons), String).contains(f'"{reason.value}"'))
    if status_ is not None:
        query = query.where(ReviewItem.status == status_.value)
    if intent is not None:
        query = query.where(ReviewItem.intent == intent)
    query = window.within(query, ReviewItem.turn_at)
    return paginate(session, query, paging, ReviewItem, sort)


def _item(session: Session, item_id: int) -> ReviewItem:
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise not_found("review item", item_id)
    return item


@router.get("/{item_id}", response_model=ReviewItemRead)
def read_item(*, item_id: int = ItemId, session: SessionDep,
              _: StaffUser) -> ReviewItem:
    return _item(session, item_id)


@router.post("/{item_id}/assign-intent", response_model=TrainingExampleRead, status_code=201,
             responses=SETTLED)
def assign_intent(*, body: AssignIntent, item_id: int = ItemId,
                  session: SessionDep,
                  caller: StaffUser) -> object:
    """The customer meant this intent: their text becomes a pending training example."""
    example = inbox.assign_intent(session, _item(session, item_id), body.intent, caller.name)
    audit.record(session, caller.name, "inbox.assign_intent", "review_item", item_id,
                 intent=body.intent, training_example_id=example.id)
    session.commit()
    session.refresh(example)
    return example


@router.post("/{item_id}/link-answer", response_model=AnswerRead, responses=SETTLED)
def link_answer(*, body: LinkAnswer, item_id: int = ItemId, session: SessionDep,
                caller: StaffUser) -> object:
    """Add the customer's words to an answer (``answer_id``) or to a new one (``answer``)."""
    answer = inbox.link_answer(session, _item(session, item_id), caller.name, body.answer_id,
                               body.answer)
    audit.record(session, caller.name, "inbox.link_answer", "review_item", item_id,
                 answer_id=answer.id)
    session.commit()
    session.refresh(answer)
    return answer


@router.post("/{item_id}/ignore", response_model=ReviewItemRead, responses=SETTLED)
def ignore_item(*, item_id: int = ItemId, session: SessionDep,
                caller: StaffUser) -> ReviewItem:
    item = _item(session, item_id)
    inbox.ignore(session, item, caller.name)
    audit.record(session, caller.name, "inbox.ignore", "review_item", item_id)
    session.commit()
    session.refresh(item)
    return item
