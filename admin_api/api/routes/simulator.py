"""The threshold simulator, for admins: replay a range of days' logged customer turns through
the production model and the current answers (a worker job), then ask how they would be
decided under other thresholds."""

from __future__ import annotations

from fastapi import APIRouter

from admin_api import simulator
from admin_api.api.deps import AdminUser, SessionDep
from admin_api.models import Job, JobRead, ReplayCreate, SimulationAsk, SimulationRead

router = APIRouter(prefix="/simulator", tags=["simulator"])


@router.post("/replays", response_model=JobRead, status_code=202,
             responses={409: {"description": "A replay is already queued"},
                        422: {"description": "The days are not a range the store can hold"}})
def start_replay(*, body: ReplayCreate, session: SessionDep, caller: AdminUser) -> Job:
    """Queue a replay of the days `first` to `last` (UTC, inclusive). Follow it at
    `GET /api/v1/jobs/{id}`; when it succeeds its turns replace the previous replay's."""
    job = simulator.enqueue(session, caller.name, body.first, body.last)
    session.commit()
    session.refresh(job)
    return job


@router.post("/outcomes", response_model=SimulationRead,
             responses={404: {"description": "No finished replay (or not that one)"},
                        409: {"description": "That replay has not finished"}})
def simulate(*, body: SimulationAsk, session: SessionDep, _: AdminUser) -> SimulationRead:
    """How the replayed turns would be decided under `body`'s thresholds, beside the setting
    in force, and the first `changed_limit` turns whose decision changes. Nothing is saved."""
    return simulator.simulate(session, body)


@router.get("/replays/latest", response_model=JobRead,
            responses={404: {"description": "No replay has finished yet"}})
def latest_replay(*, session: SessionDep, _: AdminUser) -> Job:
    """The newest finished replay (its `result` says what it replayed and with what)."""
    return simulator.replay_job(session, None)
