"""The model registry as the API shows it (the table: ``learning.models``)."""

from __future__ import annotations

from admin_api.core.schema import ApiRead
from learning.models import ModelStatus, ModelVersionBase


class ModelRead(ApiRead, ModelVersionBase):  # type: ignore[misc]  # Configs merged
    id: int
    status: ModelStatus


class ModelDetail(ModelRead):
    report: str
