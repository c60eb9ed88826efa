"""The model registry (staff see it, admins act): each model's figures, its maturity report
with the gate's checks and the confusion picture, two models side by side, promote and roll
back, and the watch after a promotion (admins turn its automatic rollback on or off). The
actions are the API's own routes, so the swap is the one the API makes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from markdown_it import MarkdownIt

from admin_api import promotion_watch
from admin_api.api.deps import AdminUser, SessionDep, StaffUser
from admin_api.api.paging import Paging
from admin_api.api.routes import registry as api
from admin_api.console.forms import choice
from admin_api.console.pages import is_htmx, notice, render
from admin_api.models import ModelStatus, ModelVersion, WatchUpdate
from common.config import get_settings
from learning.worker import job_dir

router = APIRouter(prefix="/models")
# The report is ours, but it names intents and files: HTML in it stays text.
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def figures(entry: ModelVersion) -> dict[str, Any]:
    """The registry's columns: what the held-out evaluation measured."""
    measured = (entry.metrics or {}).get("candidate") or {}
    latency = measured.get("latency_ms") or {}
    return {"accuracy": measured.get("accuracy"), "macro_f1": measured.get("macro_f1"),
            "oos_recall": measured.get("oos_recall"), "latency_p95": latency.get("p95"),
            "size_mb": entry.size_bytes / 1e6}


def per_intent(entry: ModelVersion) -> list[dict[str, Any]]:
    """Recall and F1 per intent beside production's when it was judged; worse ones first."""
    metrics = entry.metrics or {}
    ours = ((metrics.get("candidate") or {}).get("per_intent")) or {}
    theirs = ((metrics.get("production") or {}).get("per_intent")) or {}
    rows = []
    for name, row in ours.items():
        before = theirs.get(name) or {}
        drop = (before["recall"] - row["recall"]) if "recall" in before else None
        rows.append({"intent": name, "recall": row.get("recall"), "f1": row.get("f1-score"),
                     "support": row.get("support"), "before": before.get("recall"),
                     "worse": drop is not None and drop > 0.0001})
    return sorted(rows, key=lambda r: (not r["worse"], r["f1"] if r["f1"] is not None else 1))


def _picture(entry: ModelVersion) -> Any:
    if entry.job_id is None:
        return None
    path = job_dir(get_settings(), entry.job_id) / "confusion_matrix.png"
    return path if path.is_file() else None


@router.get("", response_class=HTMLResponse)
def models_page(request: Request, session: SessionDep, caller: StaffUser,
                status: str | None = Query(None, max_length=20),
                paging: Paging = Depends()) -> HTMLResponse:
    state = choice(ModelStatus, status, "status")
    page = api.list_models(status_=state, sort="-created_at", paging=paging, session=session,
                           _=caller)
    rows = [{"entry": e, **figures(e)} for e in page["items"]]
    template = "models/_list.html" if is_htmx(request) else "models/page.html"
    watch = promotion_watch.latest(session)
    watched = session.get(ModelVersion, watch.model_key) if watch else None
    rollback = promotion_watch.last_rollback(session)
    return render(request, template, caller, page=page, rows=rows,
                  status=state.value if state else "", statuses=[s.value for s in ModelStatus],
                  watch=watch, watched=watched, margin=get_settings().promotion_watch_margin,
                  settings=api.read_watch(session=session, _=caller), rollback=rollback,
                  rolled=session.get(ModelVersion, rollback.model_key) if rollback else None)


@router.get("/compare", response_class=HTMLResponse)
def compare(request: Request, session: SessionDep, caller: StaffUser,
            a: int = Query(..., ge=1, le=2**31 - 1),
            b: int = Query(..., ge=1, le=2**31 - 1)) -> HTMLResponse:
    left, right = (api.read_model(model_key=k, session=session, _=caller) for k in (a, b))
    intents = sorted(set((left.metrics.get("candidate") or {}).get("per_intent") or {})
                     | set((right.metrics.get("candidate") or {}).get("per_intent") or {}))

    def recall(entry: ModelVersion, name: str) -> float | None:
        return ((((entry.metrics.get("candidate") or {}).get("per_intent") or {})
                 .get(name) or {}).get("recall"))

    rows = [{"intent": n, "a": recall(left, n), "b": recall(right, n)} for n in intents]
    return render(request, "models/compare.html", caller, left=left, right=right,
                  fl=figures(left), fr=figures(right), rows=rows)


@router.get("/{model_key}", response_class=HTMLResponse)
def model_page(request: Request, session: SessionDep, caller: StaffUser,
               model_key: int = api.ModelKey) -> HTMLResponse:
    entry = api.read_model(model_key=model_key, session=session, _=caller)
    return render(request, "models/model.html", caller, entry=entry, f=figures(entry),
                  intents=per_intent(entry), report=MARKDOWN.render(entry.report or ""),
                  picture=_picture(entry) is not None)


@router.get("/{model_key}/confusion.png")
def confusion_picture(session: SessionDep, caller: StaffUser,
                      model_key: int = api.ModelKey) -> FileResponse:
    entry = api.read_model(model_key=model_key, session=session, _=caller)
    path = _picture(entry)
    if path is None:
        raise HTTPException(404, f"model {model_key} has no confusion picture")
    return FileResponse(path, media_type="image/png")


@router.post("/{model_key}/promote", response_class=HTMLResponse)
def promote(request: Request, session: SessionDep, caller: AdminUser,
            model_key: int = api.ModelKey) -> HTMLResponse:
    entry = api.promote_model(model_key=model_key, session=session, caller=caller)
    return notice(request, f"{entry.model_id} is in production: Rasa swaps it in at its next "
                           "pull, within seconds, with no failed reply.",
                  headers={"HX-Refresh": "true"})


@router.post("/watch", response_class=HTMLResponse)
def watch_settings(request: Request, session: SessionDep, caller: AdminUser,
                   auto_rollback: bool = Form(False)) -> HTMLResponse:
    saved = api.update_watch(body=WatchUpdate(auto_rollback=auto_rollback), session=session,
                             caller=caller)
    return notice(request, "Automatic rollback is on: a rise beyond the margin rolls production "
                           "back by itself." if saved.auto_rollback else
                  "Automatic rollback is off: a rise raises the alert only.")


@router.post("/rollback", response_class=HTMLResponse)
def rollback(request: Request, session: SessionDep, caller: AdminUser) -> HTMLResponse:
    entry = api.rollback(session=session, caller=caller)
    return notice(request, f"Rolled back: {entry.model_id} is in production again.",
                  headers={"HX-Refresh": "true"})
