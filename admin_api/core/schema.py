"""The base of every schema the admin API reads or writes, so that its OpenAPI document tells
the truth to a client generated from it: a field that can be ``null`` says so, and every
datetime is RFC 3339 with its offset.

The database keeps naive UTC datetimes (SQLite has no time zones); without this a client
would get ``2026-12-04T10:00:00`` and could not know it is UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, validator

from common.schema import document_nullable


def rfc3339(moment: datetime) -> str:
    """A datetime as RFC 3339 with an offset; naive ones are UTC (how the database keeps them)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat()


class ApiConfig:
    """Mixed into a schema's ``Config`` (generic models cannot inherit ``ApiModel``)."""

    json_encoders = {datetime: rfc3339}
    schema_extra = staticmethod(document_nullable)


class ApiModel(BaseModel):
    class Config(ApiConfig):
        pass


def document_read(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A response always carries every field that cannot be ``null``: say so, even for fields
    that have a default because a table shares them."""
    document_nullable(schema, model)
    schema["required"] = [f.alias for f in model.__fields__.values() if not f.allow_none]


class ApiRead(ApiModel):
    """The base of a schema the API answers with, read from a table row."""

    class Config(ApiConfig):
        orm_mode = True
        schema_extra = staticmethod(document_read)


def not_null(*names: str) -> Any:
    """A validator for optional fields of a partial update that may be left out but not set to
    ``null`` (the column cannot hold it): a 422 naming the field, and documented as such.
    Assign it to ``__not_null__``'s companion: ``_not_null = not_null("role")``."""

    def check(cls: type, value: object) -> object:  # pydantic's signature
        if value is None:
            raise ValueError("may be left out, but not null")
        return value

    return validator(*names, pre=True, allow_reuse=True)(check)
