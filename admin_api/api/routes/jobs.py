"""Worker jobs (retraining runs, simulator replays): admins start and cancel them; staff follow
their progress and logs."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Path, Query
from sqlmodel import Session, select

from admin_api.api.deps import (
    AdminUser,
    SessionDep,
    StaffUser,
)
from admin_api.api.paging import DB_ID_MAX, Page, Paging, not_found, paginate, sort_param
from admin_api.models import Job, JobCreate, JobDetail, JobRead, JobStatus
from learning import jobs

router = APIRouter(tags=["retraining"])
JobId = Path(..., ge=1, le=DB_ID_MAX)


@router.post("/retrain", response_model=JobRead, status_code=202,
             responses={409: {"description": "A retraining job is already queued"}})
def start_retraining(*, body: JobCreate = Body(default_factory=JobCreate),  # type: ignore[arg-type]
                     session: SessionDep,
                     caller: AdminUser) -> Job:
    """Queue a retraining run: snapshot the data, train, evaluate against production, gate.

    A worker (`helpdesk serve` runs one, or `helpdesk worker` elsewhere) picks it up; follow it
    at `GET /api/v1/jobs/{id}`.
    """
    job = jobs.enqueue(session, caller.name, body.dict())
    session.commit()
    session.refresh(job)
    return job


@router.get("/jobs", response_model=Page[JobRead])
def list_jobs(*, status_: JobStatus | None = None,
              kind: str | None = Query(None, pattern="^(retrain|replay)$",
                                       description="retrain, or the simulator's replay"),
              sort: str = sort_param("-created_at", ("created_at", "id")),
              paging: Paging = Depends(), session: SessionDep,
              _: StaffUser) -> dict:
    query = select(Job)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if status_ is not None:
        query = query.where(Job.status == status_.value)
    return paginate(session, query, paging, Job, sort)


def _job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise not_found("job", job_id)
    return job


@router.get("/jobs/{job_id}", response_model=JobDetail)
def read_job(*, job_id: int = JobId, session: SessionDep,
             _: StaffUser) -> Job:
    """One job with its log, current step, progress (0-1) and step timings in seconds."""
    return _job(session, job_id)


@router.post("/jobs/{job_id}/cancel", response_model=JobRead,
             responses={409: {"description": "The job has already ended"}})
def cancel_job(*, job_id: int = JobId, session: SessionDep,
               caller: AdminUser) -> Job:
    """A queued job ends at once; a running one stops within a few seconds (its training
    process is killed, nothing it made is promoted)."""
    job = jobs.request_cancel(session, _job(session, job_id), caller.name)
    session.commit()
    session.refresh(job)
    return job
