"""Monitoring figures over a time window, from customer turns (tracker store) and feedback.

``summarize`` is a pure function of its inputs, so the figures can be checked exactly against a
seeded tracker store; the routes and the Prometheus collector only feed it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, select

from admin_api.models import Feedback, Rating
from admin_api.tracker import TrackerStore, Turn

FAILING = frozenset({"fallback", "clarify", "handoff"})
TOP = 10
BINS = 10


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def summarize(turns: list[Turn], feedback: Iterable[Feedback]) -> dict[str, Any]:
    messages = len(turns)
    outcomes = Counter(t.outcome for t in turns)
    sessions = {t.session_id for t in turns}
    handed_off = {t.session_id for t in turns if t.outcome == "handoff"}
    ratings = Counter(f.rating for f in feedback)
    down_by_intent = Counter()  # type: Counter[str]
    usage: dict[int, dict[str, int]] = defaultdict(lambda: {"answered": 0, "up": 0, "down": 0})
    for item in feedback:
        if item.rating == "down" and item.intent:
            down_by_intent[item.intent] += 1
        if item.answer_id is not None:
            usage[item.answer_id][item.rating] += 1
    intents = Counter(t.intent or "(none)" for t in turns)
    failing = Counter(t.intent or "(none)" for t in turns if t.outcome in FAILING)
    failing.update(down_by_intent)
    histogram = [0] * BINS
    for turn in turns:
        if turn.confidence is not None:
            histogram[min(BINS - 1, max(0, int(turn.confidence * BINS)))] += 1
        if turn.outcome == "answer":
            for answer_id in turn.answer_ids[:1]:
                usage[answer_id]["answered"] += 1
    per_model: dict[str, list[Turn]] = defaultdict(list)
    for turn in turns:
        per_model[turn.model_id or "(unknown)"].append(turn)
    up, down = ratings.get(Rating.up, 0), ratings.get(Rating.down, 0)
    return {
        "messages": messages,
        "conversations": len(sessions),
        "answer_rate": _rate(outcomes["answer"], messages),
        "fallback_rate": _rate(outcomes["fallback"], messages),
        "clarification_rate": _rate(outcomes["clarify"], messages),
        "handoff_rate": _rate(len(handed_off), len(sessions)),
        "feedback": {"up": up, "down": down, "up_ratio": _rate(up, up + down)},
        "top_intents": [{"intent": i, "count": c} for i, c in intents.most_common(TOP)],
        "top_failing_intents": [
            {"intent": i, "failures": c, "failure_rate": _rate(c, intents.get(i, 0) or c)}
            for i, c in failing.most_common(TOP)
        ],
        "confidence_histogram": [
            {"from": round(b / BINS, 2), "to": round((b + 1) / BINS, 2), "count": histogram[b]}
            for b in range(BINS)
        ],
        "answer_usage": sorted(
            ({"answer_id": a, **counts} for a, counts in usage.items()),
            key=lambda row: (-row["answered"], row["answer_id"]),
        ),
        "per_model": [
            {"model_id": model, "messages": len(group),
             "fallback_rate": _rate(sum(t.outcome == "fallback" for t in group), len(group)),
             "clarification_rate": _rate(sum(t.outcome == "clarify" for t in group),
                                         len(group)),
             "mean_confidence": round(sum(t.confidence or 0.0 for t in group) / len(group), 4)}
            for model, group in sorted(per_model.items())
        ],
    }


def summary_for(session: Session, store: TrackerStore, since: Any, until: Any) -> dict:
    """The figures of ``summarize`` for a window, read from the stores."""
    turns = store.turns(since=since, until=until)
    feedback = session.exec(select(Feedback).where(Feedback.created_at >= since,
                                                   Feedback.created_at < until)).all()
    return {"since": since, "until": until, **summarize(turns, feedback)}
