"""The review inbox: what the bot got wrong or was unsure of, and what staff do about it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from pydantic import Field as PField
from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from admin_api.core.schema import ApiModel
from admin_api.models.feedback import FeedbackStatus
from common.db import EnumText, utcnow
from common.text import INTENT_PATTERN
from retrieval.answers import MAX_ANSWER_ID, AnswerData


class ReviewReason(str, enum.Enum):
    thumbs_down = "thumbs_down"
    fallback = "fallback"
    clarify = "clarify"
    low_confidence = "low_confidence"


class ReviewItem(SQLModel, table=True):
    """One customer turn the bot may have got wrong (the "misunderstood" queue).

    Found in the tracker store (fallbacks, clarifications, low confidence) or raised by a
    thumbs-down. The text, intent and confidence are the tracker's, copied so staff can triage
    them; erasing the conversation erases the item.
    """

    __tablename__ = "review_item"
    id: Optional[int] = Field(default=None, primary_key=True)
    session_id: str = Field(max_length=128, index=True)
    message_id: str = Field(max_length=128)
    reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    text: Optional[str] = Field(default=None, sa_column=Column(Text))
    intent: Optional[str] = Field(default=None, max_length=100)
    confidence: Optional[float] = None
    answer_id: Optional[int] = None
    model_id: Optional[str] = Field(default=None, max_length=128)
    turn_at: datetime = Field(default_factory=utcnow, index=True)
    status: FeedbackStatus = Field(default=FeedbackStatus.new, sa_column=Column(
        EnumText(FeedbackStatus, 16), index=True, nullable=False))
    resolution: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    handled_by: Optional[str] = Field(default=None, max_length=64)
    handled_at: Optional[datetime] = None
    # The customer's words as "the same text" (``common.text.same_text_key``): a later turn
    # with the same words is counted in ``repeats`` of the open or ignored item instead of
    # becoming an item of its own, so an ignored phrase does not come back.
    text_key: Optional[str] = Field(default=None, max_length=255, index=True)
    repeats: int = Field(default=1, sa_column_kwargs={"server_default": "1"})

    __table_args__ = (UniqueConstraint("session_id", "message_id", name="uq_review_message"),)


class ReviewRepeat(SQLModel, table=True):
    """A turn merged into an earlier item with the same words (once: rescans are idempotent)."""

    __tablename__ = "review_repeat"
    id: Optional[int] = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="review_item.id", index=True)
    session_id: str = Field(max_length=128, index=True)
    message_id: str = Field(max_length=128)
    turn_at: datetime = Field(default_factory=utcnow)

    __table_args__ = (UniqueConstraint("session_id", "message_id", name="uq_review_repeat"),)


class ReviewItemRead(ApiModel):
    id: int
    session_id: str
    message_id: str
    reasons: list[ReviewReason]
    text: str | None
    intent: str | None
    confidence: float | None
    answer_id: int | None
    model_id: str | None
    turn_at: datetime
    status: FeedbackStatus
    resolution: dict
    handled_by: str | None
    handled_at: datetime | None
    repeats: int = PField(1, description="How many turns with the same words this item stands "
                                         "for (repeats are merged into one item).")

    class Config:
        orm_mode = True


class AssignIntent(ApiModel):
    intent: str = PField(..., min_length=1, max_length=100, regex=INTENT_PATTERN)

    class Config:
        extra = "forbid"


class LinkAnswer(ApiModel):
    """Link the customer's text to an existing answer (as a question variant) or a new one."""

    answer_id: int | None = PField(None, ge=1, le=MAX_ANSWER_ID)
    answer: AnswerData | None = None

    class Config:
        extra = "forbid"
