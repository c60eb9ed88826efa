"""Customers' thumbs up and down: the table and its schemas."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from pydantic import Field as PField
from pydantic import validator
from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from admin_api.core.schema import ApiModel
from common.db import EnumText, utcnow
from nlu.privacy import mask_sensitive
from retrieval.answers import MAX_ANSWER_ID


class Rating(str, enum.Enum):
    up = "up"
    down = "down"


class FeedbackStatus(str, enum.Enum):
    new = "new"
    triaged = "triaged"
    used = "used"
    ignored = "ignored"


class Feedback(SQLModel, table=True):
    """A customer's rating of one bot answer.

    ``text``, ``intent`` and ``confidence`` are looked up in the tracker by the server, never
    taken from the client, so they are empty until that lookup runs.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    session_id: str = Field(max_length=128, index=True)
    message_id: str = Field(max_length=128)
    answer_id: Optional[int] = Field(default=None, index=True)
    rating: Rating = Field(sa_column=Column(EnumText(Rating, 8), nullable=False))
    comment: Optional[str] = Field(default=None, sa_column=Column(Text))
    status: FeedbackStatus = Field(default=FeedbackStatus.new, sa_column=Column(
        EnumText(FeedbackStatus, 16), index=True, nullable=False))
    text: Optional[str] = Field(default=None, sa_column=Column(Text))
    intent: Optional[str] = Field(default=None, max_length=100)
    confidence: Optional[float] = None

    __table_args__ = (UniqueConstraint("session_id", "message_id", name="uq_feedback_message"),)


_ID_PATTERN = r"^[\w\-.:@]+$"


class FeedbackCreate(ApiModel):
    """What the widget may send to the public intake; strict, so junk is refused with a 422."""

    session_id: str = PField(..., min_length=1, max_length=128, regex=_ID_PATTERN)
    message_id: str = PField(..., min_length=1, max_length=128, regex=_ID_PATTERN)
    answer_id: int | None = PField(None, ge=1, le=MAX_ANSWER_ID)
    rating: Rating
    comment: str | None = PField(None, max_length=2000)

    class Config:
        extra = "forbid"

    @validator("comment")
    def _comment(cls, value: str | None) -> str | None:  # pydantic validator
        if value is None:
            return None
        if "\x00" in value:
            raise ValueError("comment must not contain NUL characters")
        return mask_sensitive(value.strip()) or None


class FeedbackRead(ApiModel):
    id: int
    created_at: datetime
    session_id: str
    message_id: str
    answer_id: int | None
    rating: Rating
    comment: str | None
    status: FeedbackStatus

    class Config:
        orm_mode = True


class FeedbackDetail(FeedbackRead):
    """What staff see: also the customer's text, intent and confidence from the tracker."""

    text: str | None
    intent: str | None
    confidence: float | None
