"""Retraining jobs as the API reads and writes them (the table: ``learning.models``)."""

from __future__ import annotations

from pydantic import Field as PField

from admin_api.core.schema import ApiModel, ApiRead
from learning.models import JobBase, JobStatus


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


class JobRead(ApiRead, JobBase):  # type: ignore[misc]  # two Configs, merged by pydantic
    id: int
    status: JobStatus


class JobDetail(JobRead):
    log: str
