"""What the bot does with a search result: answer, clarify, or fall back; thresholds from data.

``decide`` looks at the best score and its margin over the runner-up: below ``fallback`` nothing
is good enough; between ``fallback`` and ``answer`` something is, but not surely enough to answer
alone (a question that straddles two intents can land here), so the customer is offered the top
answers as buttons; above ``answer`` a close runner-up still asks. ``choose_thresholds`` picks
all three on labelled queries (in-scope queries with their gold answer, and out-of-scope ones)
by maximising the expected worth of the decisions to a customer:

- answer: +1 when right, -1 when wrong (a confident wrong answer is the worst outcome);
- clarify: +0.5 when the right answer is among the offered buttons, else -0.5;
- fallback (offer a human): +1 for an out-of-scope query, -0.5 for an in-scope one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from common.files import write_atomic

logger = logging.getLogger(__name__)

ANSWER, CLARIFY, FALLBACK = "answer", "clarify", "fallback"
CLARIFY_OPTIONS = 3


@dataclass(frozen=True)
class Thresholds:
    fallback: float = 0.45  # best score below this: nothing good
    margin: float = 0.05  # best minus runner-up below this: ask which one
    answer: float = 0.0  # best score below this (but not below fallback): ask which one


@dataclass(frozen=True)
class Calibration:
    """How hits are scored and decided: the intent boost weight, the support weight, and the
    decision thresholds with and without an intent ranking.

    ``support`` weighs the similarity of an answer's second-best text: an answer that two of its
    texts (two variants, or a variant and its title) bring close to the question is likelier
    right than one a single text happens to brush against. On BANKING77 it is worth about half
    a point to a point of recall@1 over the best text alone.
    """

    boost: float = 0.3
    without_ranking: Thresholds = field(default_factory=Thresholds)
    with_ranking: Thresholds = field(default_factory=Thresholds)
    chosen_on: str = "built-in defaults (not chosen on data)"
    support: float = 0.0

    def thresholds(self, has_ranking: bool) -> Thresholds:
        return self.with_ranking if has_ranking else self.without_ranking

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Calibration:
        """The file's layout, from the file or from the answers feed (the admin database's
        saved setting); every way it can be wrong is one ``ValueError`` naming ``where``
        (``file <path>``, ``from the answers feed``)."""
        try:
            if not isinstance(raw, dict):
                raise ValueError("expected a JSON object")
            return cls(
                boost=float(raw["boost"]),
                support=float(raw.get("support", 0.0)),
                without_ranking=_thresholds(raw["without_ranking"]),
                with_ranking=_thresholds(raw["with_ranking"]),
                chosen_on=str(raw.get("chosen_on", "")),
            )
        except (KeyError, TypeError, ValueError) as error:
            what = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise ValueError(f"bad retriever thresholds {where}: {what}") from None

    @classmethod
    def load(cls, path: Path) -> Calibration:
        if not path.is_file():
            logger.warning("no retriever calibration at %s: using built-in defaults", path)
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"bad retriever thresholds file {path}: {error}") from None
        return cls.from_dict(raw, f"file {path}")


def _thresholds(raw: dict) -> Thresholds:
    """Numbers, whatever a hand-edited file holds: a bad value or an unknown key (a typo that
    would silently leave a default in force) fails at load, not per search."""
    if not isinstance(raw, dict):
        raise ValueError("thresholds must be a JSON object")
    known = {f.name for f in fields(Thresholds)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown threshold keys {unknown}; known: {sorted(known)}")
    return Thresholds(**{key: float(value) for key, value in raw.items()})


def decide(scores: Sequence[float], thresholds: Thresholds) -> str:
    """``scores`` are the ranked hits' scores, best first."""
    if not scores or scores[0] < thresholds.fallback:
        return FALLBACK
    if scores[0] < thresholds.answer or (len(scores) > 1
                                         and scores[0] - scores[1] < thresholds.margin):
        return CLARIFY
    return ANSWER


@dataclass(frozen=True)
class Scored:
    """What a decision needs of one search, and no more: the two best scores, whether the
    classifier's ranking took part (it picks the thresholds) and whether one answer matched a
    staff-written question word for word (answered whatever the thresholds). The threshold
    simulator caches this per logged turn and decides again as thresholds move."""

    top1: float | None
    top2: float | None
    has_ranking: bool
    exact: bool = False


def decide_scored(scored: Scored, calibration: Calibration) -> str:
    """``Retriever.search``'s decision, from what ``Scored`` kept of it."""
    if scored.exact:
        return ANSWER
    scores = [s for s in (scored.top1, scored.top2) if s is not None]
    return decide(scores, calibration.thresholds(scored.has_ranking))


@dataclass(frozen=True)
class Case:
    """One labelled query: its ranked scores and where its gold answer ranked (None: absent)."""

    scores: tuple[float, ...]
    gold_rank: int | None
    in_scope: bool


def worth(case: Case, decision: str) -> float:
    if decision == FALLBACK:
        return -0.5 if case.in_scope else 1.0
    if decision == CLARIFY:
        offered = case.in_scope and case.gold_rank is not None and case.gold_rank < CLARIFY_OPTIONS
        return 0.5 if offered else -0.5
    return 1.0 if case.in_scope and case.gold_rank == 0 else -1.0


def choose_thresholds(cases: Sequence[Case]) -> tuple[Thresholds, float]:
    """The grid point with the highest mean worth (ties: the lower fallback, then the lower
    answer threshold, then the smaller margin: the fewest questions sent back to the customer).
    An answer threshold at or below the fallback one means no band of doubt."""
    if not cases:
        raise ValueError("choosing thresholds needs labelled queries")
    top = np.array([c.scores[0] if c.scores else -np.inf for c in cases])
    gap = np.array([c.scores[0] - c.scores[1] if len(c.scores) > 1 else np.inf for c in cases])
    worth_of = {d: np.array([worth(c, d) for c in cases]) for d in (ANSWER, CLARIFY, FALLBACK)}
    finite = top[np.isfinite(top)]
    levels = np.quantile(finite, np.linspace(0, 0.95, 96)) if len(finite) else np.array([0.0])
    candidates = np.unique(np.round(levels, 3))
    margins = np.round(np.arange(0.0, 0.2001, 0.005), 3)
    # For each fallback and answer threshold, every margin at once: among the queries left to
    # answer, a margin m turns those with a gap under m into clarifications, so the worth over
    # margins is a cumulative sum in gap order (about 5,000 threshold pairs, not 200,000 points).
    order = np.argsort(gap, kind="stable")
    below = np.searchsorted(gap[order], margins, side="left")  # how many gaps under each margin
    change = (worth_of[CLARIFY] - worth_of[ANSWER])[order]
    best, best_worth = Thresholds(), -np.inf
    n = len(cases)
    for fallback in candidates:
        falls = top < fallback
        fallen = float(worth_of[FALLBACK][falls].sum())
        for answer in (fallback, *candidates[candidates > fallback]):
            doubt = ~falls & (top < answer)
            rest = ~falls & ~doubt
            kept = float(worth_of[CLARIFY][doubt].sum() + worth_of[ANSWER][rest].sum())
            gains = np.concatenate(([0.0], np.cumsum(np.where(rest[order], change, 0.0))))
            means = (fallen + kept + gains[below]) / n
            i = int(np.argmax(means))  # the first of equals: the smallest margin
            if means[i] > best_worth + 1e-12:
                best = Thresholds(float(fallback), float(margins[i]), float(answer))
                best_worth = float(means[i])
    return best, best_worth
