"""The dashboard (staff): how the bot did over a range of UTC days, as charts drawn from the
page's own figures, each with its table and a CSV download; the figures are the summary
API's (``admin_api.metrics``), so the two never disagree."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import col, select

from admin_api import metrics, promotion_watch, turn_facts
from admin_api.api.deps import SessionDep, StaffUser, TrackerDep
from admin_api.console.forms import blank, day
from admin_api.console.pages import SECURITY_HEADERS, render
from admin_api.models import Answer, ModelVersion, utcnow
from common.config import get_settings
from common.errors import Invalid

router = APIRouter(prefix="/dashboard")
PRESETS = {"today": 1, "7d": 7, "30d": 30}
RATES = (("answer_rate", "answered"), ("clarification_rate", "clarified"),
         ("fallback_rate", "fallback"))


def date_range(preset: str | None, first: str | None, last: str | None) -> tuple[date, date,
                                                                                   str]:
    """The days asked for: a preset ending today, or ``first``..``last`` (inclusive)."""
    today = utcnow().date()
    start, end = day(first, "from"), day(last, "to")
    if start is None and end is None:
        name = blank(preset) or "7d"
        if name not in PRESETS:
            raise Invalid(f"range: {name!r} is not one of {', '.join(PRESETS)}")
        return today - timedelta(days=PRESETS[name] - 1), today, name
    first_day = (start or end or datetime.min).date()
    last_day = (end or start or datetime.min).date()
    metrics.check_days(first_day, last_day)
    return first_day, last_day, ""


def figures(session: SessionDep, store: TrackerDep, first: date,
            last: date) -> dict[str, Any]:
    """Everything the page and its downloads show, from one catch-up."""
    backlog = turn_facts.ensure_fresh(session, store)
    since = datetime.combine(first, datetime.min.time())
    until = datetime.combine(last + timedelta(days=1), datetime.min.time())
    summary = metrics.figures(session, since, until)
    ids = [row["answer_id"] for row in summary["answer_usage"][:metrics.TOP]]
    titles = dict(session.exec(select(Answer.id, Answer.title).where(
        col(Answer.id).in_(ids))).all()) if ids else {}
    return {"summary": summary, "daily": metrics.daily(session, first, last),
            "titles": {str(k): v for k, v in titles.items()},
            "backlog": None if backlog is None else {
                "folded": backlog.folded, "total": backlog.total,
                "percent": round(100 * backlog.folded / backlog.total) if backlog.total else 0},
            "since": since.isoformat(), "until": until.isoformat()}


def tables(data: dict[str, Any]) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Each downloadable table: its header and rows (the page's tables show the same)."""
    summary = data["summary"]
    per_model = summary["per_model"]
    return {
        "daily": (["day", "messages", "conversations", "answered_per_message",
                   "clarified_per_message", "fallback_per_message", "low_confidence_per_message",
                   "handed_off_per_conversation", "thumbs_up", "thumbs_down", "drift"],
                  [[d["day"], d["messages"], d["conversations"], d["answer_rate"],
                    d["clarification_rate"], d["fallback_rate"], d["low_confidence_rate"],
                    d["handoff_rate"], d["thumbs_up"], d["thumbs_down"],
                    " ".join(n for n in ("fallback", "low_confidence")
                             if d[f"{n}_rate_drift"])]
                   for d in data["daily"]]),
        "intents": (["intent", "failures", "failure_rate"],
                    [[r["intent"], r["failures"], r["failure_rate"]]
                     for r in summary["top_failing_intents"]]),
        "confidence": (["from", "to", "messages"],
                       [[b["from"], b["to"], b["count"]]
                        for b in summary["confidence_histogram"]]),
        "answers": (["answer_id", "title", "answered", "thumbs_up", "thumbs_down"],
                    [[r["answer_id"], data["titles"].get(str(r["answer_id"]), ""),
                      r["answered"], r["up"], r["down"]]
                     for r in summary["answer_usage"][:metrics.TOP]]),
        "models": (["model_id", "messages", "conversations", "answered_per_message",
                    "clarified_per_message", "fallback_per_message",
                    "handed_off_per_conversation", "thumbs_down_per_message",
                    "mean_confidence", "reply_p50_ms", "reply_p95_ms"],
                   [[m["model_id"], m["messages"], m["conversations"], m["answer_rate"],
                     m["clarification_rate"], m["fallback_rate"], m["handoff_rate"],
                     m["thumbs_down_rate"], m["mean_confidence"],
                     m["reply_latency_ms"]["p50"], m["reply_latency_ms"]["p95"]]
                    for m in per_model]),
    }


def _cell(value: Any) -> Any:
    """Spreadsheets run a cell that starts like a formula: such text gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


@router.get("", response_class=HTMLResponse)
def dashboard_page(request: Request, session: SessionDep, store: TrackerDep,
                   caller: StaffUser,
                   range_: str | None = Query(None, alias="range", max_length=10),
                   first: str | None = Query(None, alias="from", max_length=10),
                   last: str | None = Query(None, alias="to", max_length=10)) -> HTMLResponse:
    start, end, preset = date_range(range_, first, last)
    data = figures(session, store, start, end)
    # An automatic rollback stays in view until production changes again; else the last check.
    watch = promotion_watch.last_rollback(session) or promotion_watch.latest(session)
    watched = session.get(ModelVersion, watch.model_key) if watch and watch.rises else None
    query = f"range={preset}" if preset else f"from={start}&to={end}"
    drift = [d for d in data["daily"] if d["fallback_rate_drift"]
             or d["low_confidence_rate_drift"]]
    return render(request, "dashboard/page.html", caller, data=data, s=data["summary"],
                  tables=tables(data), first=start, last=end, preset=preset, query=query,
                  presets=list(PRESETS), drift=drift, watch=watch, watched=watched,
                  low_confidence=get_settings().review_confidence_below)


@router.get("/{table}.csv")
def download(session: SessionDep, store: TrackerDep, _: StaffUser,
             table: str = Path(..., max_length=20),
             range_: str | None = Query(None, alias="range", max_length=10),
             first: str | None = Query(None, alias="from", max_length=10),
             last: str | None = Query(None, alias="to", max_length=10)) -> Response:
    start, end, _preset = date_range(range_, first, last)
    all_tables = tables(figures(session, store, start, end))
    if table not in all_tables:
        raise HTTPException(404, f"no dashboard table {table!r}: one of "
                                 f"{', '.join(all_tables)}")
    header, rows = all_tables[table]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    name = f"dashboard-{table}-{start}-to-{end}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={**SECURITY_HEADERS,
                             "Content-Disposition": f'attachment; filename="{name}"'})
