"""Pagination and sorting shared by every list route: ``limit``/``offset`` and a ``sort``
parameter such as ``-updated_at`` (a minus sign sorts descending)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic.generics import GenericModel
from sqlalchemy import func
from sqlmodel import Session, select

from admin_api.core.schema import ApiConfig

# Ids are 32-bit integers in the database; a larger one in a URL is a 4xx, not a 500.
from admin_api.models import DB_ID_MAX  # noqa: F401 - re-exported for the routes
from common.errors import Invalid, NotFound

T = TypeVar("T")


class Page(GenericModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int

    class Config(ApiConfig):
        pass


class Paging:
    def __init__(self, limit: int = Query(50, ge=1, le=500),
                 offset: int = Query(0, ge=0, le=10_000_000)) -> None:
        self.limit = limit
        self.offset = offset


def naive_utc(value: datetime | None) -> datetime | None:
    """Stored times are naive UTC; a client's time with an offset is converted to that."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


class Window:
    """A time window from ``since`` (inclusive) to ``until`` (exclusive), ISO 8601."""

    def __init__(self, since: datetime | None = Query(None, description="ISO 8601, inclusive"),
                 until: datetime | None = Query(None, description="ISO 8601, exclusive")) -> None:
        self.since, self.until = naive_utc(since), naive_utc(until)
        if self.since and self.until and self.since >= self.until:
            raise Invalid("since must be before until")

    def within(self, query: Any, column: Any) -> Any:
        """``query`` restricted to rows whose ``column`` falls in the window."""
        if self.since is not None:
            query = query.where(column >= self.since)
        if self.until is not None:
            query = query.where(column < self.until)
        return query


def sort_param(default: str, allowed: tuple[str, ...]) -> Any:
    pattern = "^-?(" + "|".join(allowed) + ")$"
    return Query(default, pattern=pattern,
                 description=f"One of {', '.join(allowed)}; prefix '-' for descending.")


def order_by(model: Any, sort: str) -> list[Any]:
    column = getattr(model, sort.lstrip("-"))
    primary = column.desc() if sort.startswith("-") else column.asc()
    tiebreak = model.id.desc() if sort.startswith("-") else model.id.asc()
    return [primary, tiebreak]


def paginate(session: Session, query: Any, paging: Paging, model: type, sort: str) -> dict:
    """Run ``query`` (a select of ``model`` with filters) as one page, with the total count."""
    total = session.exec(select(func.count())  # type: ignore[call-overload]
                         .select_from(query.subquery())).one()
    rows = session.exec(query.order_by(*order_by(model, sort))
                        .offset(paging.offset).limit(paging.limit)).all()
    return {"items": list(rows), "total": int(total), "limit": paging.limit,
            "offset": paging.offset}


def not_found(kind: str, key: object) -> NotFound:
    return NotFound(f"no {kind} with id {key}")
