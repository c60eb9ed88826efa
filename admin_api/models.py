"""SQLModel tables, and the separate schemas that the API reads and writes.

Tables hold what the database stores; ``*Create``/``*Read`` schemas say what a client may send
and what it gets back, so a new column never leaks into or out of the API by accident.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from pydantic import Field as PField
from pydantic import StrictStr, conint, validator
from sqlalchemy import JSON, BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from admin_api.core.schema import ApiModel, not_null
from common.audit import AuditEntry as AuditEntry
from common.db import DB_ID_MAX, utcnow
from common.text import INTENT_PATTERN
from learning.models import FINISHED_JOB_STATUSES as FINISHED_JOB_STATUSES
from learning.models import ExampleSource, ExampleStatus, JobStatus, ModelStatus
from learning.models import Job as Job
from learning.models import ModelVersion as ModelVersion
from learning.models import TrainingExample as TrainingExample
from nlu.privacy import mask_sensitive
from retrieval.answers import MAX_ANSWER_ID, AnswerData, AnswerStatus


class Answer(SQLModel, table=True):
    """A curated answer; the live copy (``data/answers`` only seeds it)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    intent: Optional[str] = Field(default=None, index=True, max_length=100)
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
    rating: str = Field(max_length=8)
    comment: Optional[str] = Field(default=None, sa_column=Column(Text))
    status: str = Field(default=FeedbackStatus.new.value, max_length=16, index=True)
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


class Meta(SQLModel, table=True):
    """Small key/value facts about the database (for example, whether answers were seeded)."""

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=256)


# --- People and tokens -------------------------------------------------------------------


class Role(str, enum.Enum):
    """``staff`` curate answers, triage feedback and take hand-offs; ``admin`` also manage
    people, retraining and deployments."""

    admin = "admin"
    staff = "staff"


class User(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    role: str = Field(max_length=16)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """A bearer token. Only its SHA-256 is stored: the token is shown once, when made."""

    __tablename__ = "api_token"
    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=64)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: Optional[datetime] = None
    revoked_at: Optional[datetime] = None
    last_used_at: Optional[datetime] = None


_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$"


class UserCreate(ApiModel):
    name: str = PField(..., min_length=1, max_length=64, regex=_NAME_PATTERN)
    role: Role

    class Config:
        extra = "forbid"


class UserUpdate(ApiModel):
    role: Role | None = None
    active: bool | None = None
    __not_null__ = ("role", "active")
    _not_null = not_null(*__not_null__)

    class Config:
        extra = "forbid"


class UserRead(ApiModel):
    id: int
    name: str
    role: Role
    active: bool
    created_at: datetime

    class Config:
        orm_mode = True


class TokenCreate(ApiModel):
    name: str = PField("api", min_length=1, max_length=64, regex=_NAME_PATTERN)
    expires_in_days: int | None = PField(
        90, ge=1, le=3650, description="Days until the token stops working; null: never.")

    class Config:
        extra = "forbid"


class TokenRead(ApiModel):
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    class Config:
        orm_mode = True


class TokenIssued(TokenRead):
    token: str = PField(..., description="The secret itself; shown only in this response.")


# --- Answer revisions ------------------------------------------------------------------


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


# --- Review inbox and training data ----------------------------------------------------


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
    status: str = Field(default=FeedbackStatus.new.value, max_length=16, index=True)
    resolution: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    handled_by: Optional[str] = Field(default=None, max_length=64)
    handled_at: Optional[datetime] = None

    __table_args__ = (UniqueConstraint("session_id", "message_id", name="uq_review_message"),)


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


class TrainingExampleCreate(ApiModel):
    text: str = PField(..., min_length=1, max_length=500)
    intent: str = PField(..., min_length=1, max_length=100, regex=INTENT_PATTERN)

    class Config:
        extra = "forbid"

    @validator("text")
    def _text(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("text must not be blank")
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        return mask_sensitive(value)


class TrainingExampleRead(ApiModel):
    id: int
    text: str
    intent: str
    source: ExampleSource
    status: ExampleStatus
    review_item_id: int | None
    feedback_id: int | None
    created_by: str | None
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None

    class Config:
        orm_mode = True


BULK_MAX = 500


class ExampleBulkReview(ApiModel):
    """Staff approve or reject many pending examples at once (the confirmed-by-customers queue
    grows with traffic; one click per example does not scale)."""

    ids: list[conint(strict=True, ge=1, le=DB_ID_MAX)] = PField(  # type: ignore[valid-type]
        ..., min_items=1, max_items=BULK_MAX)
    status: ExampleStatus

    class Config:
        extra = "forbid"

    @validator("status")
    def _status(cls, value: ExampleStatus) -> ExampleStatus:
        if value == ExampleStatus.pending:
            raise ValueError("status must be approved or rejected")
        return value


class ExampleBulkResult(ApiModel):
    changed: list[int]  # ids now in the requested status
    skipped: dict[int, str]  # id -> why it was left as it was (unknown, already reviewed)


# --- Audit log ---------------------------------------------------------------------------


class AuditEntryRead(ApiModel):
    id: int
    created_at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str | None
    details: dict

    class Config:
        orm_mode = True


# --- Retraining jobs and the model registry ----------------------------------------------


class JobCreate(ApiModel):
    """What an admin may ask of one retraining run."""

    tune_trials: int = PField(0, ge=0, le=200, description="Hyperparameter search trials "
                                                           "before training (0: none)")
    limit_per_intent: int | None = PField(None, ge=1, le=100_000,
                                          description="Train on at most N seed examples per "
                                                      "intent (approved examples are all kept)")
    promote: bool = PField(True, description="Promote the candidate when it passes the gate")

    class Config:
        extra = "forbid"


class JobRead(ApiModel):
    id: int
    kind: str
    status: JobStatus
    requested_by: str
    params: dict
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    progress: float
    step: str
    timings: dict
    result: dict
    error: str | None
    cancel_requested: bool

    class Config:
        orm_mode = True


class JobDetail(JobRead):
    log: str


class ModelRead(ApiModel):
    id: int
    model_id: str
    file_name: str
    sha256: str
    size_bytes: int
    data_hash: str
    params: dict
    metrics: dict
    gate: dict
    status: ModelStatus
    job_id: int | None
    created_at: datetime
    promoted_by: str | None
    promoted_at: datetime | None

    class Config:
        orm_mode = True


class ModelDetail(ModelRead):
    report: str
