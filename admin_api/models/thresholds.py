"""The retriever's decision thresholds as saved in the admin database, and the simulator's
cached replay of logged turns."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from pydantic import Field as PField
from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from admin_api.core.schema import ApiModel, ApiRead
from common.db import DB_ID_MAX, utcnow

# Scores are similarities plus weighted evidence (intent boost, support): a few units at most.
SCORE_MIN, SCORE_MAX, MARGIN_MAX = -1.0, 10.0, 10.0


class ThresholdSetting(SQLModel, table=True):
    """One revision of the thresholds in force: the whole calibration (the boost and support
    weights with the six thresholds), who saved it and why. The newest row is in force; the
    first is seeded from the thresholds file (``helpdesk index calibrate`` writes it)."""

    __tablename__ = "threshold_setting"
    id: Optional[int] = Field(default=None, primary_key=True)
    calibration: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    author: str = Field(max_length=64)
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class DecisionThresholds(ApiModel):
    """One set of the three thresholds ``retrieval.decision.decide`` reads."""

    fallback: float = PField(..., ge=SCORE_MIN, le=SCORE_MAX,
                             description="Best score below this: nothing is good enough "
                                         "(offer a person)")
    answer: float = PField(..., ge=SCORE_MIN, le=SCORE_MAX,
                           description="Best score below this, but not below `fallback`: "
                                       "ask which answer is meant")
    margin: float = PField(..., ge=0.0, le=MARGIN_MAX,
                           description="Best minus runner-up below this: ask which one")

    class Config:
        extra = "forbid"


class ThresholdPair(ApiModel):
    """Both sets: a turn whose classifier gave a ranking is decided by ``with_ranking``."""

    without_ranking: DecisionThresholds
    with_ranking: DecisionThresholds


class ThresholdsUpdate(ThresholdPair):
    """What an admin saves, and why."""

    note: str = PField("", max_length=500, description="Why: shown in the history and audit")

    class Config:
        extra = "forbid"


class CalibrationRead(ThresholdPair):
    """The calibration in force, in the thresholds file's layout (what retrievers load)."""

    boost: float = PField(..., description="The intent boost weight")
    support: float = PField(..., description="The support weight")
    chosen_on: str = PField(..., description="What the weights were chosen on")


class ThresholdsRead(CalibrationRead):
    """The setting in force (or one of its history)."""

    revision: int
    author: str
    note: str
    created_at: datetime


class ReplayTurn(SQLModel, table=True):
    """One logged customer turn as the production classifier and the current answers score it
    now: what the simulator decides again as thresholds move, in the browser and on the
    server alike. No words: the page looks a changed turn's text up in the tracker store, and
    an erasure deletes the conversation's rows."""

    __tablename__ = "replay_turn"
    id: Optional[int] = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id")
    session_id: str = Field(max_length=255, index=True)
    turn_key: str = Field(max_length=128)
    at: datetime
    logged: str = Field(max_length=16)  # the outcome the bot gave then
    top1: Optional[float] = None
    top2: Optional[float] = None
    has_ranking: bool = False
    exact: bool = False
    answer_id: Optional[int] = None  # the best hit's answer

    __table_args__ = (UniqueConstraint("job_id", "session_id", "turn_key",
                                       name="uq_replay_turn_key"),
                      Index("ix_replay_turn_job", "job_id", "id"))


class ReplayCreate(ApiModel):
    """Which days of logged turns to replay (UTC, both included)."""

    first: date = PField(..., description="First day, YYYY-MM-DD")
    last: date = PField(..., description="Last day, YYYY-MM-DD")

    class Config:
        extra = "forbid"


class Outcomes(ApiModel):
    answer: int
    clarify: int
    fallback: int


class ChangedTurn(ApiRead):
    session_id: str
    turn_key: str
    at: datetime
    before: str = PField(..., description="The decision under the setting in force")
    after: str = PField(..., description="The decision under the thresholds asked about")
    top1: Optional[float]
    top2: Optional[float]
    has_ranking: bool
    answer_id: Optional[int]


class SimulationRead(ApiModel):
    """How the replayed turns would be decided under some thresholds, beside the setting in
    force, and the turns that change."""

    replay_job_id: int
    turns: int
    in_force: Outcomes
    simulated: Outcomes
    changed_total: int
    changed: list[ChangedTurn]


class SimulationAsk(ThresholdPair):
    """Thresholds to try on a replay's turns."""

    replay_job_id: Optional[int] = PField(None, ge=1, le=DB_ID_MAX,
                                          description="Default: the latest finished replay")
    changed_limit: int = PField(50, ge=0, le=1000)

    class Config:
        extra = "forbid"
