"""Small key/value facts about the database."""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Meta(SQLModel, table=True):
    """Small key/value facts about the database (for example, whether answers were seeded)."""

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=256)
