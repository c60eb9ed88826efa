"""SQLModel tables, and the separate schemas that the API reads and writes.

Tables hold what the database stores; ``*Create``/``*Read`` schemas say what a client may send
and what it gets back, so a new column never leaks into or out of the API by accident.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Optional

from pydantic import BaseModel, validator
from pydantic import Field as PField
from sqlalchemy import JSON, BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from retrieval.answers import MAX_ANSWER_ID, AnswerData, AnswerStatus


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Answer(SQLModel, table=True):
    """A curated answer; the live copy (``data/answers`` only seeds it)."""

    id: Optional[int] = Field(default=None, primary_key=True)  # noqa: UP045
    intent: Optional[str] = Field(default=None, index=True, max_length=100)  # noqa: UP045
    title: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    questions: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tags: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=AnswerStatus.draft.value, max_length=20, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # The answer clock's value at this answer's last write.
    version: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, index=True, server_default="1")
    )

    def to_data(self) -> AnswerData:
        return AnswerData(
            id=self.id, intent=self.intent, title=self.title, body=self.body,
            questions=list(self.questions), tags=list(self.tags), status=self.status,
        )


class AnswerRead(AnswerData):
    id: int
    created_at: datetime
    updated_at: datetime
    version: int

    class Config:
        orm_mode = True


class AnswerClock(SQLModel, table=True):
    """One row whose ``version`` counts answer writes.

    Every write increments it inside its own transaction, which locks the row until commit, so
    versions are handed out in commit order and a poller reading ``version > N`` misses nothing.
    """

    __tablename__ = "answer_clock"
    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class AnswerTombstone(SQLModel, table=True):
    """A deleted answer, kept so that pollers learn of the deletion."""

    __tablename__ = "answer_tombstone"
    answer_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    version: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    deleted_at: datetime = Field(default_factory=utcnow)


class AnswerChanges(BaseModel):
    """The answers feed read by the retriever: what changed after ``since``, oldest first."""

    version: int
    upserts: list[AnswerRead]
    removed: list[int]
    more: bool


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

    id: Optional[int] = Field(default=None, primary_key=True)  # noqa: UP045
    created_at: datetime = Field(default_factory=utcnow, index=True)
    session_id: str = Field(max_length=128, index=True)
    message_id: str = Field(max_length=128)
    answer_id: Optional[int] = Field(default=None, index=True)  # noqa: UP045
    rating: str = Field(max_length=8)
    comment: Optional[str] = Field(default=None, sa_column=Column(Text))  # noqa: UP045
    status: str = Field(default=FeedbackStatus.new.value, max_length=16, index=True)
    text: Optional[str] = Field(default=None, sa_column=Column(Text))  # noqa: UP045
    intent: Optional[str] = Field(default=None, max_length=100)  # noqa: UP045
    confidence: Optional[float] = None  # noqa: UP045

    __table_args__ = (UniqueConstraint("session_id", "message_id", name="uq_feedback_message"),)


_ID_PATTERN = r"^[\w\-.:@]+$"


class FeedbackCreate(BaseModel):
    """What the widget may send to the public intake; strict, so junk is refused with a 422."""

    session_id: str = PField(..., min_length=1, max_length=128, regex=_ID_PATTERN)
    message_id: str = PField(..., min_length=1, max_length=128, regex=_ID_PATTERN)
    answer_id: int | None = PField(None, ge=1, le=MAX_ANSWER_ID)
    rating: Rating
    comment: str | None = PField(None, max_length=2000)

    class Config:
        extra = "forbid"

    @validator("comment")
    def _comment(cls, value: str | None) -> str | None:  # noqa: N805 - pydantic validator
        if value is None:
            return None
        if "\x00" in value:
            raise ValueError("comment must not contain NUL characters")
        return value.strip() or None


class FeedbackRead(BaseModel):
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


class Meta(SQLModel, table=True):
    """Small key/value facts about the database (for example, whether answers were seeded)."""

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=256)
