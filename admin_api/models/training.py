"""Training examples added after launch, as the API reads and writes them (the table is the
learning loop's: ``learning.models``)."""

from __future__ import annotations

from pydantic import Field as PField
from pydantic import conint, validator

from admin_api.core.schema import ApiModel, ApiRead
from common.db import DB_ID_MAX
from common.text import INTENT_PATTERN
from learning.models import ExampleSource, ExampleStatus, TrainingExampleBase
from nlu.privacy import mask_sensitive


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


class TrainingExampleRead(ApiRead, TrainingExampleBase):  # type: ignore[misc]  # Configs merged
    id: int
    source: ExampleSource
    status: ExampleStatus


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
