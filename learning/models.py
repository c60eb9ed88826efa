"""The retraining loop's tables: training examples added after launch, retraining jobs and the
model registry. The admin API's read and create schemas for them live in ``admin_api.models``."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from common.db import EnumText, utcnow


class ExampleStatus(str, enum.Enum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class ExampleSource(str, enum.Enum):
    staff = "staff"  # written by staff
    feedback = "feedback"  # a mistake staff corrected from the review inbox
    confirmed = "confirmed"  # the bot's own intent, confirmed by a customer's thumbs-up


class TrainingExampleBase(SQLModel):
    """A training example's fields as its table stores them and the admin API shows them."""

    text: str = Field(sa_column=Column(Text, nullable=False))
    intent: str = Field(max_length=100, index=True)
    review_item_id: Optional[int] = None
    feedback_id: Optional[int] = Field(default=None, index=True)
    created_by: Optional[str] = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    approved_by: Optional[str] = Field(default=None, max_length=64)
    approved_at: Optional[datetime] = None


class TrainingExample(TrainingExampleBase, table=True):
    """A training example added after launch (seed data stays in ``data/`` files)."""

    __tablename__ = "training_example"
    id: Optional[int] = Field(default=None, primary_key=True)
    source: ExampleSource = Field(sa_column=Column(EnumText(ExampleSource, 16), nullable=False))
    status: ExampleStatus = Field(default=ExampleStatus.pending, sa_column=Column(
        EnumText(ExampleStatus, 16), index=True, nullable=False))


class JobStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED_JOB_STATUSES = (JobStatus.succeeded.value, JobStatus.failed.value,
                         JobStatus.cancelled.value)


class JobBase(SQLModel):
    """A job's fields as its table stores them and the admin API shows them (written once)."""

    kind: str = Field(default="retrain", max_length=16)
    requested_by: str = Field(max_length=64)
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    heartbeat_at: Optional[datetime] = None
    worker: Optional[str] = Field(default=None, max_length=128)
    progress: float = 0.0
    step: str = Field(default="", max_length=64)
    timings: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: Optional[str] = Field(default=None, sa_column=Column(Text))
    cancel_requested: bool = False


class Job(JobBase, table=True):
    """A worker's job: a retraining run, or (``kind`` "replay") the threshold simulator's replay
    of logged turns. The worker that claims it beats ``heartbeat_at``; a running job whose
    heartbeat stopped belongs to a dead worker and is failed by the next worker."""

    __tablename__ = "job"
    id: Optional[int] = Field(default=None, primary_key=True)
    status: JobStatus = Field(default=JobStatus.queued, sa_column=Column(
        EnumText(JobStatus, 16), index=True, nullable=False))
    log: str = Field(default="", sa_column=Column(Text, nullable=False))


class ModelStatus(str, enum.Enum):
    candidate = "candidate"
    production = "production"
    rejected = "rejected"
    archived = "archived"


class ModelVersionBase(SQLModel):
    """A registered model's fields as its table stores them and the admin API shows them."""

    model_id: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    file_name: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    data_hash: str = Field(default="", max_length=64)
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    metrics: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    gate: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    job_id: Optional[int] = Field(default=None, foreign_key="job.id")
    created_at: datetime = Field(default_factory=utcnow)
    promoted_by: Optional[str] = Field(default=None, max_length=64)
    promoted_at: Optional[datetime] = None


class ModelVersion(ModelVersionBase, table=True):
    """One trained Rasa model: Rasa's own model id, where its archive is, what it was trained
    on, how it measured, and whether it serves customers. At most one is ``production``."""

    __tablename__ = "model_version"
    id: Optional[int] = Field(default=None, primary_key=True)
    path: str = Field(sa_column=Column(Text, nullable=False))
    report: str = Field(default="", sa_column=Column(Text, nullable=False))
    status: ModelStatus = Field(default=ModelStatus.candidate, sa_column=Column(
        EnumText(ModelStatus, 16), index=True, nullable=False))
