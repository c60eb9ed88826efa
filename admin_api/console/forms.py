"""Reading the console's query strings and forms: an empty field means "not given" (a filter
form sends every field), and a bad value is a 422 naming the field."""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import TypeVar

from common.errors import Invalid

E = TypeVar("E", bound=enum.Enum)


def blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def choice(kind: type[E], value: str | None, name: str) -> E | None:
    value = blank(value)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise Invalid(f"{name}: {value!r} is not one of {allowed}") from None


def lines(value: str | None) -> list[str]:
    """One entry per line, blank lines dropped."""
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def words(value: str | None) -> list[str]:
    """Comma-separated entries (tags)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def number(value: str | None, name: str, low: float | None = None,
           high: float | None = None) -> float | None:
    value = blank(value)
    if value is None:
        return None
    try:
        result = float(value)
    except ValueError:
        raise Invalid(f"{name}: {value!r} is not a number") from None
    if (low is not None and result < low) or (high is not None and result > high):
        raise Invalid(f"{name}: must be between {low} and {high}")
    return result


def day(value: str | None, name: str) -> datetime | None:
    """A date field (``YYYY-MM-DD``) as the start of that day, naive UTC like the database."""
    value = blank(value)
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time())
    except ValueError:
        raise Invalid(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None
