"""The threshold simulator (admin): replay a range of days' customer turns (a worker job, with
progress), move the six decision thresholds and see at once how many turns would be
answered, clarified or handed off, and which turns change; save a setting, and every action
server decides with it within seconds. The page recounts in the browser from the replay's
cached scores; the list of changed turns, and every write, are the API's."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import col, select

from admin_api import simulator, thresholds
from admin_api.api.deps import AdminUser, SessionDep, TrackerDep
from admin_api.api.routes import simulator as api
from admin_api.api.routes import thresholds as thresholds_api
from admin_api.console.forms import day
from admin_api.console.pages import notice, render
from admin_api.models import (
    DecisionThresholds,
    Job,
    ReplayCreate,
    SimulationAsk,
    SimulationRead,
    ThresholdPair,
    ThresholdsRead,
    ThresholdsUpdate,
    utcnow,
)
from admin_api.models.thresholds import MARGIN_MAX, SCORE_MAX, SCORE_MIN
from common.errors import Invalid, NotFound
from learning.models import FINISHED_JOB_STATUSES
from retrieval.decision import decide_scored

router = APIRouter(prefix="/simulator")
DEFAULT_DAYS = 30
CHANGED_SHOWN = 50


def _score(name: str) -> float:
    return Form(..., alias=name, ge=SCORE_MIN, le=SCORE_MAX)


def pair_form(
    without_fallback: float = _score("without_ranking.fallback"),
    without_answer: float = _score("without_ranking.answer"),
    without_margin: float = Form(..., alias="without_ranking.margin", ge=0.0, le=MARGIN_MAX),
    with_fallback: float = _score("with_ranking.fallback"),
    with_answer: float = _score("with_ranking.answer"),
    with_margin: float = Form(..., alias="with_ranking.margin", ge=0.0, le=MARGIN_MAX),
) -> ThresholdPair:
    """The six thresholds from the page's form (named ``<group>.<name>``, as the API's body
    nests them); a bad one is the console's 422 naming the field."""
    return ThresholdPair(
        without_ranking=DecisionThresholds(fallback=without_fallback, answer=without_answer,
                                           margin=without_margin),
        with_ranking=DecisionThresholds(fallback=with_fallback, answer=with_answer,
                                        margin=with_margin))


PairForm = Annotated[ThresholdPair, Depends(pair_form)]


def _active_replay(session: SessionDep) -> Job | None:
    return session.exec(select(Job).where(
        Job.kind == simulator.REPLAY,
        col(Job.status).notin_(FINISHED_JOB_STATUSES)).order_by(col(Job.id).desc())).first()


@router.get("", response_class=HTMLResponse)
def simulator_page(request: Request, session: SessionDep, caller: AdminUser) -> HTMLResponse:
    setting = thresholds.in_force(session)
    in_force = thresholds.read(setting)
    today = utcnow().date()
    context: dict = {"in_force": in_force, "running": _active_replay(session),
                     "first": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
                     "last": today.isoformat(), "history": thresholds.history(session, 10),
                     "replay": None, "data": None, "stale": []}
    try:
        replay = simulator.replay_job(session, None)
    except NotFound:
        replay = None
    if replay is not None and replay.id is not None:
        rows = simulator.scores(session, replay.id)
        context.update(replay=replay, data={
            **simulator.page_data(rows),
            "in_force": {"without_ranking": in_force.without_ranking.dict(),
                         "with_ranking": in_force.with_ranking.dict()}},
            stale=_stale(session, replay, in_force.boost, in_force.support))
        context["bounds"] = _bounds(rows, in_force)
        # The counts before any slider moves (the page's script recounts from here on).
        calibration = thresholds.calibration_of(setting)
        now = simulator.counts([decide_scored(simulator.scored(r), calibration) for r in rows])
        context["simulation"] = SimulationRead(replay_job_id=replay.id, turns=len(rows),
                                               in_force=now, simulated=now, changed_total=0,
                                               changed=[])
    return render(request, "simulator/page.html", caller, **context)


def _stale(session: SessionDep, replay: Job, boost: float, support: float) -> list[str]:
    """Why the cached scores may differ from what the bot would compute now."""
    from admin_api import crud
    from learning import registry

    result, reasons = replay.result, []
    production = registry.production(session)
    if (production.model_id if production else None) != result.get("model_id"):
        reasons.append("another model is in production")
    if crud.current_version(session) != result.get("answers_version"):
        reasons.append("answers were edited")
    if (boost, support) != (result.get("boost"), result.get("support")):
        reasons.append("the boost or support weight changed (a calibration)")
    return reasons


def _bounds(rows: list[simulator.Scores], in_force: ThresholdsRead) -> dict[str, float]:
    """Each score slider's range: the replayed scores', widened to hold the setting in force."""
    tops = [r[1] for r in rows if r[1] is not None]
    low = min([0.0, *tops])
    high = max([1.0, *tops])
    for group in ("without_ranking", "with_ranking"):
        values = getattr(in_force, group)
        low, high = min(low, values.fallback, values.answer), max(high, values.fallback,
                                                                   values.answer)
    return {"low": round(low - 0.05, 2), "high": round(high + 0.05, 2)}


@router.post("/replays", response_class=HTMLResponse)
def start_replay(request: Request, session: SessionDep, caller: AdminUser,
                 first: str = Form(..., max_length=10), last: str = Form(..., max_length=10)
                 ) -> Response:
    start, end = day(first, "from"), day(last, "to")
    if start is None or end is None:
        raise Invalid("from and to: both days are needed")
    job = api.start_replay(body=ReplayCreate(first=start.date(), last=end.date()),
                           session=session, caller=caller)
    return notice(request, f"Replay {job.id} queued.", headers={"HX-Refresh": "true"})


@router.post("/outcomes", response_class=HTMLResponse)
def outcomes(request: Request, session: SessionDep, store: TrackerDep, caller: AdminUser,
             pair: PairForm) -> HTMLResponse:
    """The turns that change under the form's thresholds, with their words (server-side)."""
    result = api.simulate(body=SimulationAsk(without_ranking=pair.without_ranking,
                                             with_ranking=pair.with_ranking,
                                             replay_job_id=None, changed_limit=CHANGED_SHOWN),
                          session=session, _=caller)
    texts = simulator.texts_of(store, result.changed)
    return render(request, "simulator/_changes.html", caller, result=result, texts=texts)


@router.post("/save", response_class=HTMLResponse)
def save(request: Request, session: SessionDep, caller: AdminUser, pair: PairForm,
         note: str = Form("", max_length=500)) -> HTMLResponse:
    saved = thresholds_api.save_thresholds(
        body=ThresholdsUpdate(without_ranking=pair.without_ranking,
                              with_ranking=pair.with_ranking, note=note.strip()),
        session=session, caller=caller)
    return notice(request, f"Revision {saved.revision} is in force: the bot decides with it "
                           "within seconds.", headers={"HX-Refresh": "true"})

