"""People and their API tokens."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from pydantic import Field as PField
from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from admin_api.core.schema import ApiModel, not_null
from common.db import EnumText, utcnow


class Role(str, enum.Enum):
    """``staff`` curate answers, triage feedback and take hand-offs; ``admin`` also manage
    people, retraining and deployments."""

    admin = "admin"
    staff = "staff"


class User(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    role: Role = Field(sa_column=Column(EnumText(Role, 16), nullable=False))
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
