"""Proposed answers: clusters of questions the bot could not answer, for staff to turn into
answers (``admin_api.proposals`` computes them)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from common.db import EnumText, utcnow


class ProposalStatus(str, enum.Enum):
    open = "open"  # replaced by the next recomputation
    drafted = "drafted"  # became a new draft answer
    attached = "attached"  # its questions became variants of an existing answer
    dismissed = "dismissed"


class AnswerProposal(SQLModel, table=True):
    """One topic customers ask about and the bot does not answer.

    ``questions`` holds ``{"text", "session_id", "message_id", "item_id", "repeats"}``, the
    most central first (``item_id`` is the review item's, None for a message written while
    waiting for a person). Proposals that staff acted on are kept, and their questions are
    left out of later recomputations.
    """

    __tablename__ = "answer_proposal"
    id: Optional[int] = Field(default=None, primary_key=True)
    label: str = Field(sa_column=Column(Text, nullable=False))
    size: int
    questions: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    nearest_answer_id: Optional[int] = None
    nearest_title: Optional[str] = Field(default=None, max_length=200)
    nearest_score: Optional[float] = None
    # Staff replies from hand-offs whose waiting messages fall in this cluster.
    candidate_bodies: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: ProposalStatus = Field(default=ProposalStatus.open, sa_column=Column(
        EnumText(ProposalStatus, 16), index=True, nullable=False))
    answer_id: Optional[int] = None
    created_at: datetime = Field(default_factory=utcnow)
    handled_by: Optional[str] = Field(default=None, max_length=64)
    handled_at: Optional[datetime] = None
