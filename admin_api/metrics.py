"""Monitoring figures over a time window, from the turn facts (``admin_api.turn_facts``) and
customers' feedback: one definition for the API's summary, the console's dashboard, the
Prometheus gauges and the after-promotion watch.

The units: answered, clarified and fallback rates are shares of customer messages (each
message has one outcome, so they sum to at most 1; the rest were handed off or got another
reply); the hand-off rate is a share of conversations (a conversation handed to a person at
least once); the thumbs-down rate is a share of customer messages. Reply latency runs from a
customer's message to the bot's first reply, by the tracker store's event timestamps.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from statistics import fmean, pstdev
from typing import Any

from sqlalchemy import and_, case, distinct, func, select
from sqlmodel import Session, col

from admin_api import turn_facts
from admin_api.models import Feedback, Rating, TurnFact
from admin_api.tracker import TrackerStore
from common.config import get_settings
from common.errors import Invalid

FAILING = ("fallback", "clarify", "handoff")
TOP = 10
BINS = turn_facts.BINS
BAND_DAYS = 14
# A day is judged against its trailing band only with this many days of history.
BAND_MIN_DAYS = 7
BAND_WIDTH = 3.0  # standard deviations


def _rate(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def percentile(counts: dict[int, int], q: float) -> int | None:
    """Nearest-rank percentile of values given as value -> how many."""
    total = sum(counts.values())
    if not total:
        return None
    rank = max(1, math.ceil(round(q * total, 9)))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return max(counts)


def _where(since: datetime, until: datetime, model_id: str | None = None) -> Any:
    clauses = [col(TurnFact.at) >= since, col(TurnFact.at) < until]
    if model_id is not None:
        clauses.append(col(TurnFact.model_id) == model_id)
    return and_(*clauses)


def _feedback(session: Session, since: datetime, until: datetime) -> list[Any]:
    """Feedback in the window with the rated turn's model (None when the turn is unknown)."""
    query = (select(Feedback.created_at, Feedback.rating, Feedback.intent,
                    Feedback.answer_id, TurnFact.model_id)
             .join(TurnFact, and_(TurnFact.session_id == Feedback.session_id,
                                  TurnFact.turn_key == Feedback.message_id), isouter=True)
             .where(Feedback.created_at >= since, Feedback.created_at < until))
    return list(session.execute(query).all())


def figures(session: Session, since: datetime, until: datetime) -> dict[str, Any]:
    """Every figure of the window (see the module's docstring for the units), in five scans
    of the window: the turns grouped by outcome, model, intent and confidence; conversations
    overall and per model; answers; latencies."""
    where = _where(since, until)
    threshold = get_settings().review_confidence_below
    groups = session.execute(select(
        TurnFact.outcome, TurnFact.model_id, TurnFact.intent, TurnFact.confidence_bin,
        func.count(), func.sum(TurnFact.confidence), func.count(TurnFact.confidence),
        func.sum(case((col(TurnFact.confidence) < threshold, 1), else_=0))
    ).where(where).group_by(TurnFact.outcome, TurnFact.model_id, TurnFact.intent,
                            TurnFact.confidence_bin)).all()
    outcomes: Counter[str] = Counter()
    intents: Counter[str] = Counter()
    failing: Counter[str] = Counter()
    bins: Counter[int] = Counter()
    low = 0
    models: dict[str | None, Counter[str]] = defaultdict(Counter)
    confidence_sums: dict[str | None, float] = defaultdict(float)
    for outcome, model, intent, confidence_bin, count, total, rated, below in groups:
        name = intent or "(none)"
        outcomes[outcome] += count
        intents[name] += count
        if outcome in FAILING:
            failing[name] += count
        if confidence_bin is not None:
            bins[confidence_bin] += count
        low += below or 0
        per = models[model]
        per["messages"] += count
        per[outcome] += count
        confidence_sums[model] += total or 0.0
        per["rated"] += rated
    messages = sum(outcomes.values())
    conversations, handed_off = session.execute(select(
        func.count(distinct(TurnFact.session_id)),
        func.count(distinct(case((TurnFact.outcome == "handoff", TurnFact.session_id))))
    ).where(where)).one()
    feedback = _feedback(session, since, until)
    ratings = Counter(f.rating for f in feedback)
    up, down = ratings.get(Rating.up, 0), ratings.get(Rating.down, 0)
    failing.update(f.intent for f in feedback if f.rating == Rating.down and f.intent)
    usage: dict[int, dict[str, int]] = defaultdict(lambda: {"answered": 0, "up": 0, "down": 0})
    for answer_id, count in session.execute(
            select(TurnFact.answer_id, func.count())
            .where(where, TurnFact.outcome == "answer",
                   col(TurnFact.answer_id).is_not(None))
            .group_by(TurnFact.answer_id)).all():
        usage[answer_id]["answered"] = count
    for item in feedback:
        if item.answer_id is not None:
            usage[item.answer_id][item.rating.value] += 1
    latency: dict[str | None, Counter[int]] = defaultdict(Counter)
    for model, value, count in session.execute(
            select(TurnFact.model_id, TurnFact.latency_ms, func.count())
            .where(where, col(TurnFact.latency_ms).is_not(None))
            .group_by(TurnFact.model_id, TurnFact.latency_ms)).all():
        latency[model][value] += count
    overall: Counter[int] = Counter()
    for counts in latency.values():
        overall.update(counts)
    return {
        "messages": messages,
        "conversations": conversations,
        "answer_rate": _rate(outcomes["answer"], messages),
        "fallback_rate": _rate(outcomes["fallback"], messages),
        "clarification_rate": _rate(outcomes["clarify"], messages),
        "handoff_rate": _rate(handed_off, conversations),
        "low_confidence_rate": _rate(low, messages),
        "feedback": {"up": up, "down": down, "up_ratio": _rate(up, up + down)},
        "thumbs_down_rate": _rate(down, messages),
        "reply_latency_ms": {"p50": percentile(overall, 0.5),
                             "p95": percentile(overall, 0.95)},
        "top_intents": [{"intent": i, "count": c}
                        for i, c in sorted(intents.items(), key=lambda x: (-x[1], x[0]))[:TOP]],
        "top_failing_intents": [
            {"intent": i, "failures": c, "failure_rate": _rate(c, intents.get(i, 0) or c)}
            for i, c in sorted(failing.items(), key=lambda x: (-x[1], x[0]))[:TOP]],
        "confidence_histogram": [
            {"from": round(b / BINS, 2), "to": round((b + 1) / BINS, 2), "count": bins.get(b, 0)}
            for b in range(BINS)],
        "answer_usage": sorted(({"answer_id": a, **counts} for a, counts in usage.items()),
                               key=lambda row: (-row["answered"], row["answer_id"])),
        "per_model": _per_model(session, where, models, confidence_sums, latency, feedback),
    }


def reply_latency(session: Session, since: datetime, until: datetime) -> dict[str, int | None]:
    """Reply latency p50/p95 (ms) of the turns in a window."""
    counts = dict(session.execute(select(TurnFact.latency_ms, func.count())
                                  .where(_where(since, until),
                                         col(TurnFact.latency_ms).is_not(None))
                                  .group_by(TurnFact.latency_ms)).all())
    return {"p50": percentile(counts, 0.5), "p95": percentile(counts, 0.95)}


def _per_model(session: Session, where: Any, models: dict[str | None, Counter[str]],
               confidence_sums: dict[str | None, float],
               latency: dict[str | None, Counter[int]],
               feedback: list[Any]) -> list[dict[str, Any]]:
    """The same figures for each model id that served in the window, side by side."""
    sessions = {model: (total, handed) for model, total, handed in session.execute(select(
        TurnFact.model_id, func.count(distinct(TurnFact.session_id)),
        func.count(distinct(case((TurnFact.outcome == "handoff", TurnFact.session_id))))
    ).where(where).group_by(TurnFact.model_id)).all()}
    downs = Counter(f.model_id for f in feedback if f.rating == Rating.down)
    out = []
    for model, counts in models.items():
        messages = counts["messages"]
        total, handed = sessions.get(model, (0, 0))
        out.append({
            "model_id": model or "(unknown)", "messages": messages, "conversations": total,
            "answer_rate": _rate(counts["answer"], messages),
            "clarification_rate": _rate(counts["clarify"], messages),
            "fallback_rate": _rate(counts["fallback"], messages),
            "handoff_rate": _rate(handed, total),
            "thumbs_down_rate": _rate(downs.get(model, 0), messages),
            "mean_confidence": round(confidence_sums[model] / counts["rated"], 4)
            if counts["rated"] else 0.0,
            "reply_latency_ms": {"p50": percentile(latency[model], 0.5),
                                 "p95": percentile(latency[model], 0.95)}})
    return sorted(out, key=lambda row: row["model_id"])


def rates(session: Session, since: datetime, until: datetime,
          model_id: str | None = None) -> dict[str, float]:
    """The watched rates of one window (optionally one model's turns): fallback and
    thumbs-down per message, hand-off per conversation, and the message count."""
    where = _where(since, until, model_id)
    messages, fell_back, conversations, handed = session.execute(select(
        func.count(), func.sum(case((TurnFact.outcome == "fallback", 1), else_=0)),
        func.count(distinct(TurnFact.session_id)),
        func.count(distinct(case((TurnFact.outcome == "handoff", TurnFact.session_id))))
    ).where(where)).one()
    feedback = _feedback(session, since, until)
    down = sum(1 for f in feedback if f.rating == Rating.down
               and (model_id is None or f.model_id == model_id))
    return {"fallback_rate": _rate(fell_back or 0, messages),
            "handoff_rate": _rate(handed, conversations),
            "thumbs_down_rate": _rate(down, messages), "messages": float(messages)}


def summary_for(session: Session, store: TrackerStore, since: datetime,
                until: datetime) -> dict[str, Any]:
    """The figures of a window, with the facts brought up to date first; ``backlog`` is null,
    or how far the first fold of a large store has come (the figures count that far)."""
    backlog = turn_facts.ensure_fresh(session, store)
    return {"since": since, "until": until, **figures(session, since, until),
            "backlog": None if backlog is None else {"folded_event_id": backlog.folded,
                                                     "last_event_id": backlog.total}}


EARLIEST, LATEST = date(1970, 1, 1), date(9000, 1, 1)
MAX_DAYS = 366


def check_days(first: date, last: date) -> None:
    """A range of days the figures can be asked for; a 422 naming what is wrong otherwise."""
    if last < first:
        raise Invalid("last must not be before first")
    if first < EARLIEST or last > LATEST:
        raise Invalid(f"days must fall between {EARLIEST} and {LATEST}")
    if (last - first).days >= MAX_DAYS:
        raise Invalid(f"at most {MAX_DAYS} days at once")


def _days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def daily(session: Session, first: date, last: date) -> list[dict[str, Any]]:
    """Per UTC day from ``first`` to ``last`` (inclusive): messages, conversations, outcome
    rates per message, hand-off rate per conversation, thumbs, and the shares of fallback and
    low-confidence turns judged against their trailing 14-day band."""
    start = first - timedelta(days=BAND_DAYS)
    since = datetime.combine(start, datetime.min.time())
    until = datetime.combine(last + timedelta(days=1), datetime.min.time())
    where = and_(col(TurnFact.day) >= start.isoformat(), col(TurnFact.day) <= last.isoformat())
    threshold = get_settings().review_confidence_below
    per_day = {row[0]: row for row in session.execute(select(
        TurnFact.day, func.count(),
        func.sum(case((TurnFact.outcome == "answer", 1), else_=0)),
        func.sum(case((TurnFact.outcome == "clarify", 1), else_=0)),
        func.sum(case((TurnFact.outcome == "fallback", 1), else_=0)),
        func.sum(case((col(TurnFact.confidence) < threshold, 1), else_=0)),
        func.count(distinct(TurnFact.session_id)),
        func.count(distinct(case((TurnFact.outcome == "handoff", TurnFact.session_id))))
    ).where(where).group_by(TurnFact.day)).all()}
    thumbs: dict[str, Counter[str]] = defaultdict(Counter)
    for row in session.execute(select(Feedback.created_at, Feedback.rating).where(
            Feedback.created_at >= since, Feedback.created_at < until)).all():
        thumbs[row[0].date().isoformat()][row[1].value] += 1
    series: list[dict[str, Any]] = []
    for day in _days(start, last):
        row = per_day.get(day)
        messages = row[1] if row else 0
        series.append({
            "day": day, "messages": messages, "conversations": row[6] if row else 0,
            "answer_rate": _rate(row[2] or 0, messages) if row else 0.0,
            "clarification_rate": _rate(row[3] or 0, messages) if row else 0.0,
            "fallback_rate": _rate(row[4] or 0, messages) if row else 0.0,
            "low_confidence_rate": _rate(row[5] or 0, messages) if row else 0.0,
            "handoff_rate": _rate(row[7], row[6]) if row else 0.0,
            "thumbs_up": thumbs[day]["up"], "thumbs_down": thumbs[day]["down"]})
    for index, entry in enumerate(series):
        history = [d for d in series[max(0, index - BAND_DAYS):index] if d["messages"]]
        for name in ("fallback_rate", "low_confidence_rate"):
            entry[f"{name}_band"] = band(history, name, entry["messages"])
            low_high = entry[f"{name}_band"]
            entry[f"{name}_drift"] = bool(
                low_high and entry["messages"]
                and not low_high[0] <= entry[name] <= low_high[1])
    return series[BAND_DAYS:]


def band(history: list[dict[str, Any]], name: str, messages: int) -> list[float] | None:
    """The range a day's share is expected in: the trailing days' mean, give or take three
    times their spread, and never narrower than three times the binomial noise of the day's
    own message count (a quiet day is noisy by nature; with two signals over a month, a
    narrower band would flag a few ordinary days every month). None without enough
    history."""
    if len(history) < BAND_MIN_DAYS:
        return None
    values = [d[name] for d in history]
    mean = fmean(values)
    noise = (mean * (1 - mean) / messages) ** 0.5 if messages else 0.0
    width = BAND_WIDTH * max(pstdev(values), noise)
    return [round(max(0.0, mean - width), 4), round(min(1.0, mean + width), 4)]
