"""The threshold simulator: logged customer turns replayed, then decided again under any
thresholds.

A replay is a worker job (``helpdesk worker`` runs it, with progress and cancel like a
retraining run): it reads a range of days' customer turns from the tracker store, ranks their
intents with the production model (``nlu.rasa_component.ArchivedClassifier``, as that model
serves), searches the published answers with the weights in force, and caches what a decision
needs of each search (``retrieval.decision.Scored``) in ``replay_turn``. Moving a threshold
then costs no model: the console recounts the cached turns in the browser as sliders move, and
``simulate`` recounts them here with ``retrieval.decision.decide_scored``, the function the
bot's retriever decides with.

Only turns the retriever decided are replayed: those logged as answered, clarified or fallen
back. A turn handed over (asked for a person, or after a second miss) or handled by a flow is
not the thresholds' doing. Button clicks (``/intent`` payloads) are not questions.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from admin_api import crud, metrics, thresholds
from admin_api.models import (
    Answer,
    ChangedTurn,
    Job,
    JobStatus,
    Outcomes,
    ReplayTurn,
    SimulationAsk,
    SimulationRead,
)
from admin_api.tracker import TrackerStore, Turn
from admin_api.turn_facts import turn_key
from common.config import Settings
from common.db import get_engine
from common.errors import Conflict, NotFound
from learning import jobs, registry
from learning.pipeline import Progress
from retrieval.answers import AnswerStatus
from retrieval.decision import (
    ANSWER,
    CLARIFY,
    CLARIFY_OPTIONS,
    FALLBACK,
    Calibration,
    Scored,
    Thresholds,
    decide_scored,
)

REPLAY = "replay"
REPLAYED = (ANSWER, CLARIFY, FALLBACK)
BATCH = 256  # turns per classifier and encoder batch, and per commit
DIGITS = 5  # scores are kept to this many decimals: the browser and the server read the same


def enqueue(session: Session, actor: str, first: date, last: date) -> Job:
    """Queue a replay of the days ``first`` to ``last`` (UTC, inclusive); the caller commits."""
    metrics.check_days(first, last)
    return jobs.enqueue(session, actor, {"first": first.isoformat(), "last": last.isoformat()},
                        kind=REPLAY)


def replayable(turn: Turn) -> bool:
    text = turn.text.strip()
    return turn.outcome in REPLAYED and bool(text) and not text.startswith("/")


def replay(job_id: int, params: dict, progress: Progress, settings: Settings) -> dict:
    """The worker's handler for a replay job: score every replayable turn of the range."""
    from nlu.rasa_component import ArchivedClassifier
    from retrieval.encoder import load_encoder
    from retrieval.retriever import Retriever

    started = time.monotonic()
    first, last = date.fromisoformat(params["first"]), date.fromisoformat(params["last"])
    since = datetime.combine(first, datetime.min.time())
    until = datetime.combine(last + timedelta(days=1), datetime.min.time())
    engine = get_engine()
    progress.step("reading turns", 0.0)
    seen: set[tuple[str, str]] = set()
    turns = []
    for turn in TrackerStore(settings.tracker_store_url).turns(since, until):
        key = (turn.session_id, turn_key(turn))
        if replayable(turn) and key not in seen:  # one row per message, as the facts keep
            seen.add(key)
            turns.append(turn)
    progress.log(f"{len(turns)} replayable customer turns from {first} to {last}")
    with Session(engine) as session:
        setting = thresholds.in_force(session)
        calibration = thresholds.calibration_of(setting)
        production = registry.production(session)
        model = (production.model_id, production.path) if production else None
        answers = [row.to_data() for row in session.exec(
            select(Answer).where(Answer.status == AnswerStatus.published.value))]
        answers_version = crud.current_version(session)
    progress.check()
    progress.step("loading the models", 0.02)
    classifier = ArchivedClassifier(Path(model[1])) if model else None
    progress.log(f"classifier: {model[0] if model else 'none in production (no rankings)'}")
    encoder = load_encoder(settings.encoder_models,
                           cache_path=settings.index_dir / "embeddings.sqlite")
    retriever = Retriever(encoder, calibration)
    retriever.replace_all(answers)
    progress.log(f"{len(answers)} published answers indexed")
    progress.timing("load", time.monotonic() - started)
    scoring = time.monotonic()
    try:
        for start in range(0, len(turns), BATCH):
            progress.check()
            batch = turns[start:start + BATCH]
            texts = [t.text for t in batch]
            rankings = classifier.rankings(texts) if classifier else None
            results = retriever.search_many(texts, k=CLARIFY_OPTIONS, intent_rankings=rankings)
            with Session(engine) as session:
                for turn, result in zip(batch, results, strict=True):
                    scored = result.scored()
                    session.add(ReplayTurn(
                        job_id=job_id, session_id=turn.session_id, turn_key=turn_key(turn),
                        at=turn.at, logged=turn.outcome, top1=_kept(scored.top1),
                        top2=_kept(scored.top2), has_ranking=scored.has_ranking,
                        exact=scored.exact,
                        answer_id=result.top.answer_id if result.top else None))
                session.commit()
            done = start + len(batch)
            progress.step("scoring turns", 0.05 + 0.95 * done / max(1, len(turns)))
            if done % (BATCH * 8) == 0 or done == len(turns):
                progress.log(f"{done} of {len(turns)} turns scored")
    except BaseException:
        _drop(job_id)  # a stopped replay leaves no half a cache behind
        raise
    progress.timing("score", time.monotonic() - scoring)
    with Session(engine) as session:  # only the newest replay is kept
        session.execute(delete(ReplayTurn).where(col(ReplayTurn.job_id) != job_id))
        session.commit()
    return {"first": first.isoformat(), "last": last.isoformat(), "turns": len(turns),
            "model_id": model[0] if model else None, "answers": len(answers),
            "answers_version": answers_version, "thresholds_revision": setting.id,
            "boost": calibration.boost, "support": calibration.support,
            "seconds": round(time.monotonic() - started, 1)}


def _kept(score: float | None) -> float | None:
    return None if score is None else round(float(score), DIGITS)


def _drop(job_id: int) -> None:
    with Session(get_engine()) as session:
        session.execute(delete(ReplayTurn).where(col(ReplayTurn.job_id) == job_id))
        session.commit()


def forget(session: Session, session_id: str) -> int:
    """A conversation's replayed turns go with it (erasure, purge); the caller commits."""
    return int(session.execute(delete(ReplayTurn).where(  # type: ignore[attr-defined]
        col(ReplayTurn.session_id) == session_id)).rowcount)


# --- deciding again ---------------------------------------------------------------------------


def latest_replay(session: Session) -> Job | None:
    """The newest replay that finished (its turns are the ones cached)."""
    return session.exec(select(Job).where(Job.kind == REPLAY,
                                          Job.status == JobStatus.succeeded.value)
                        .order_by(col(Job.id).desc())).first()


def replay_job(session: Session, job_id: int | None) -> Job:
    job = latest_replay(session) if job_id is None else session.get(Job, job_id)
    if job is None or job.kind != REPLAY:
        raise NotFound("no finished replay: start one first" if job_id is None
                       else f"job {job_id} is not a replay")
    if job.status != JobStatus.succeeded.value:
        raise Conflict(f"replay {job.id} has not finished ({job.status})")
    return job


# (id, top1, top2, has_ranking, exact)
Scores = tuple[int, float | None, float | None, bool, bool]


def scores(session: Session, job_id: int) -> list[Scores]:
    """What deciding needs of each replayed question, in replay order: tens of thousands of
    narrow tuples (no ORM objects, no dates to parse), read once per page or recount."""
    return [(row[0], row[1], row[2], bool(row[3]), bool(row[4])) for row in session.execute(
        sa_select(ReplayTurn.id, ReplayTurn.top1, ReplayTurn.top2, ReplayTurn.has_ranking,
                  ReplayTurn.exact).where(ReplayTurn.job_id == job_id).order_by(ReplayTurn.id))]


def scored(row: Scores) -> Scored:
    return Scored(row[1], row[2], row[3], row[4])


def with_thresholds(base: Calibration, without: Thresholds, with_: Thresholds) -> Calibration:
    return Calibration(boost=base.boost, support=base.support, without_ranking=without,
                       with_ranking=with_, chosen_on=base.chosen_on)


def counts(decisions: list[str]) -> Outcomes:
    return Outcomes(**{d: decisions.count(d) for d in (ANSWER, CLARIFY, FALLBACK)})


def simulate(session: Session, ask: SimulationAsk) -> SimulationRead:
    """The replay's turns decided under the setting in force and under ``ask``."""
    job = replay_job(session, ask.replay_job_id)
    assert job.id is not None
    in_force = thresholds.calibration_of(thresholds.in_force(session))
    asked = with_thresholds(in_force, Thresholds(**ask.without_ranking.dict()),
                            Thresholds(**ask.with_ranking.dict()))
    rows = scores(session, job.id)
    before = [decide_scored(scored(row), in_force) for row in rows]
    after = [decide_scored(scored(row), asked) for row in rows]
    moved = [(row[0], then, now) for row, then, now in zip(rows, before, after, strict=True)
             if then != now]
    shown = moved[:ask.changed_limit]
    details = {t.id: t for t in session.exec(select(ReplayTurn).where(
        col(ReplayTurn.id).in_([m[0] for m in shown])))} if shown else {}
    changed = [ChangedTurn(session_id=t.session_id, turn_key=t.turn_key, at=t.at, before=then,
                           after=now, top1=t.top1, top2=t.top2, has_ranking=t.has_ranking,
                           answer_id=t.answer_id)
               for key, then, now in shown for t in (details[key],)]
    return SimulationRead(replay_job_id=job.id, turns=len(rows), in_force=counts(before),
                          simulated=counts(after), changed_total=len(moved), changed=changed)


def page_data(rows: list[Scores]) -> dict[str, Any]:
    """The cached scores as columns, for the page's own recount as sliders move."""
    return {"top1": [r[1] for r in rows], "top2": [r[2] for r in rows],
            "ranked": [int(r[3]) for r in rows], "exact": [int(r[4]) for r in rows]}


def texts_of(store: TrackerStore, turns: list[ChangedTurn]) -> dict[tuple[str, str], str]:
    """The customers' words of some turns, read from the tracker store (never cached)."""
    wanted = {(t.session_id, t.turn_key) for t in turns}
    found = store.turns_of_conversations(sorted({t.session_id for t in turns}))
    return {(t.session_id, turn_key(t)): t.text for t in found
            if (t.session_id, turn_key(t)) in wanted}

