"""Curated answers: the live table, its revisions and the answers clock, and what the API
reads and writes of them."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from pydantic import Field as PField
from pydantic import StrictStr
from sqlalchemy import JSON, BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from admin_api.core.schema import ApiModel, not_null
from admin_api.models.thresholds import CalibrationRead
from common.db import EnumText, utcnow
from retrieval.answers import AnswerData, AnswerStatus


class Answer(SQLModel, table=True):
    """A curated answer; the live copy (``data/answers`` only seeds it)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    intent: Optional[str] = Field(default=None, index=True, max_length=100)
    title: str = Field(max_length=200)
    body: str = Field(sa_column=Column(Text, nullable=False))
    questions: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tags: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: AnswerStatus = Field(default=AnswerStatus.draft, sa_column=Column(
        EnumText(AnswerStatus, 20), index=True, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # The answer clock's value at this answer's last write.
    version: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, index=True, server_default="1")
    )
    # This answer's own revision number (see AnswerRevision); edits name the one they started
    # from, and a stale one is refused with 409 instead of silently losing a colleague's edit.
    revision: int = Field(default=1, sa_column=Column(BigInteger, nullable=False,
                                                       server_default="1"))

    def to_data(self) -> AnswerData:
        return AnswerData(
            id=self.id, intent=self.intent, title=self.title, body=self.body,
            questions=list(self.questions), tags=list(self.tags),
            status=AnswerStatus(self.status),
        )


class AnswerRead(AnswerData, ApiModel):
    id: int
    created_at: datetime
    updated_at: datetime
    version: int
    revision: int

    class Config:
        orm_mode = True


class AnswerUpdate(ApiModel):
    """A partial edit. ``base_revision`` is the revision the editor started from: if someone
    saved in between, the edit is refused with 409 rather than overwriting their work."""

    base_revision: int = PField(..., ge=1, le=2**62)
    intent: StrictStr | None = None
    title: StrictStr | None = None
    body: StrictStr | None = None
    questions: list[StrictStr] | None = None
    tags: list[StrictStr] | None = None
    __not_null__ = ("title", "body", "questions", "tags")
    _not_null = not_null(*__not_null__)

    class Config:
        extra = "forbid"


class ImportReport(ApiModel):
    created: list[int]
    updated: list[int]
    unchanged: list[int]


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


class AnswerChanges(ApiModel):
    """The answers feed read by the retriever: what changed after ``since``, oldest first."""

    version: int
    upserts: list[AnswerRead]
    removed: list[int]
    more: bool
    calibration: CalibrationRead = PField(..., description="The decision thresholds in force "
                                                           "(and the weights they go with)")
    calibration_revision: int = PField(..., description="Their saved revision: a retriever "
                                                        "applies one it has not seen")


class AnswerRevision(SQLModel, table=True):
    """One state of an answer after a write: who, when, what changed, and the whole answer.

    Kept after the answer is deleted, so a deleted answer can be restored.
    """

    __tablename__ = "answer_revision"
    id: Optional[int] = Field(default=None, primary_key=True)
    answer_id: int = Field(index=True)
    revision: int
    action: str = Field(max_length=16)
    changed: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    author: Optional[str] = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)

    __table_args__ = (UniqueConstraint("answer_id", "revision", name="uq_answer_revision"),)


class AnswerRevisionRead(ApiModel):
    answer_id: int
    revision: int
    action: str
    changed: list[str]
    data: AnswerData
    author: str | None
    created_at: datetime

    class Config:
        orm_mode = True
