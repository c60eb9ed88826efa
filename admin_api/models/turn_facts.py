"""The dashboard's pre-aggregated customer turns (``admin_api.turn_facts`` fills them)."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class TurnFact(SQLModel, table=True):
    """One customer message and what the bot did about it, as the figures count it.

    The tracker store keeps every event of a conversation as JSON; a 30-day chart cannot
    parse them all on each page load, so each turn is folded once, as its events arrive, into
    one narrow row. It holds no words: an erasure or a purge deletes the conversation's rows
    with the rest, and nothing here has to be scrubbed. ``turn_key`` is the message's id (or
    its timestamp when it has none), so the tracker store and the event broker make the same
    row and a redelivered event makes none. ``day`` is the UTC date, grouped on as a string
    so that SQLite and PostgreSQL count the same days.
    """

    __tablename__ = "turn_fact"
    id: Optional[int] = Field(default=None, primary_key=True)
    session_id: str = Field(max_length=255, index=True)
    turn_key: str = Field(max_length=128)
    at: datetime
    day: str = Field(max_length=10)
    intent: Optional[str] = Field(default=None, max_length=255)
    confidence: Optional[float] = None
    confidence_bin: Optional[int] = None  # tenths, for the histogram
    model_id: Optional[str] = Field(default=None, max_length=255)
    outcome: str = Field(default="none", max_length=16)
    answer_id: Optional[int] = None
    # From the customer's message to the bot's first reply, by the events' own timestamps.
    latency_ms: Optional[int] = None

    # Every figure is a scan of a time range: with all the columns in the index, the scan
    # never visits the table.
    __table_args__ = (UniqueConstraint("session_id", "turn_key", name="uq_turn_fact_key"),
                      Index("ix_turn_fact_window", "at", "outcome", "session_id", "model_id",
                            "intent", "confidence", "confidence_bin", "answer_id",
                            "latency_ms", "day"),
                      # The daily series: grouped by day, conversations counted in order.
                      Index("ix_turn_fact_day", "day", "session_id", "outcome", "confidence"))
