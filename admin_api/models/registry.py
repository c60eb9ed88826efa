"""The model registry as the API shows it (the table: ``learning.models``)."""

from __future__ import annotations

from pydantic import Field as PField

from admin_api.core.schema import ApiModel, ApiRead
from learning.models import ModelStatus, ModelVersionBase


class ModelRead(ApiRead, ModelVersionBase):  # type: ignore[misc]  # Configs merged
    id: int
    status: ModelStatus


class ModelDetail(ModelRead):
    report: str


class WatchUpdate(ApiModel):
    """What an admin may change of the watch after a promotion."""

    auto_rollback: bool = PField(..., description="Roll production back by itself when a "
                                                  "watched rate rises beyond the margin")

    class Config:
        extra = "forbid"


class WatchRead(WatchUpdate):
    """The watch after a promotion: the admin's switch and the configured limits."""

    margin: float = PField(..., description="A rise beyond this share is an alert")
    hours: float = PField(..., description="How long after a promotion the model is watched")
    min_messages: int = PField(..., description="Fewer customer messages are not judged")
