"""Worker jobs in the database (retraining runs, simulator replays): the queue, the claim,
the heartbeat and the end states.

The database is the only coordination between the API and workers, so a worker may run on
another machine. A job moves queued -> running -> succeeded | failed | cancelled. At most one
job runs at a time: claiming is one conditional UPDATE (under a table lock on PostgreSQL), and
a running job whose heartbeat is older than the stale limit belongs to a dead worker: the next
worker marks it failed and goes on with the queue.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlmodel import Session, select

from common import audit
from common.db import utcnow
from common.errors import Conflict
from learning.models import Job, JobStatus

LOG_LIMIT = 200_000  # characters of log kept per job (the head is dropped first)


class JobConflict(Conflict):
    pass


def active(session: Session) -> list[Job]:
    return list(session.exec(select(Job).where(
        Job.status.in_([JobStatus.queued.value, JobStatus.running.value]))  # type: ignore[attr-defined]
        .order_by(Job.id)).all())


def enqueue(session: Session, requested_by: str, params: dict, kind: str = "retrain") -> Job:
    """Queue a job; refused while another of its kind is already waiting (not running)."""
    waiting = [j for j in active(session)
               if j.status == JobStatus.queued.value and j.kind == kind]
    if waiting:
        raise JobConflict(f"job {waiting[0].id} is already queued; cancel it or wait for it")
    job = Job(requested_by=requested_by, params=params, kind=kind)
    session.add(job)
    session.flush()
    audit.record(session, requested_by, "job.create", "job", job.id, kind=kind, params=params)
    return job


def claim(session: Session, worker: str) -> Job | None:
    """Take the oldest queued job if none is running; None when there is nothing to do."""
    # Workers poll every few seconds: an empty queue must not take the table lock each time.
    queued = select(Job.id).where(Job.status == JobStatus.queued.value).limit(1)
    if session.exec(queued).first() is None:
        return None
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE job IN SHARE ROW EXCLUSIVE MODE"))
    now = utcnow()
    result = session.execute(
        text("UPDATE job SET status = :running, worker = :worker, started_at = :now, "
             "heartbeat_at = :now, step = 'starting' "
             "WHERE id = (SELECT MIN(id) FROM job WHERE status = :queued) "
             "AND status = :queued "
             "AND NOT EXISTS (SELECT 1 FROM job AS other WHERE other.status = :running)"),
        {"running": JobStatus.running.value, "queued": JobStatus.queued.value,
         "worker": worker, "now": now},
    )
    session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.exec(select(Job).where(Job.status == JobStatus.running.value,
                                          Job.worker == worker)).first()


def beat(session: Session, job_id: int, worker: str) -> bool:
    """Refresh the heartbeat; False if the job is no longer this worker's, or cancel was asked."""
    job = session.get(Job, job_id)
    if job is None or job.worker != worker or job.status != JobStatus.running.value:
        return False
    job.heartbeat_at = utcnow()
    session.add(job)
    session.commit()
    return not job.cancel_requested


def reap_stale(session: Session, stale_after: timedelta, now: datetime | None = None) -> list[int]:
    """Fail running jobs whose worker stopped beating (killed, crashed, machine gone)."""
    limit = (now or utcnow()) - stale_after
    stale = session.exec(select(Job).where(Job.status == JobStatus.running.value,
                                           Job.heartbeat_at < limit)).all()  # type: ignore[operator]
    for job in stale:
        job.status = JobStatus.failed
        job.finished_at = utcnow()
        last = f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S}"
        job.error = (f"worker {job.worker} stopped its heartbeat at {last} UTC (killed or "
                     "crashed); the job did not finish")
        session.add(job)
    session.commit()
    return [job.id for job in stale if job.id is not None]


def request_cancel(session: Session, job: Job, actor: str) -> Job:
    """A queued job is cancelled at once; a running one when its worker next checks."""
    if job.status == JobStatus.queued.value:
        job.status = JobStatus.cancelled
        job.finished_at = utcnow()
        job.error = f"cancelled by {actor} before it started"
    elif job.status == JobStatus.running.value:
        job.cancel_requested = True
    else:
        raise JobConflict(f"job {job.id} has already ended ({job.status})")
    session.add(job)
    audit.record(session, actor, "job.cancel", "job", job.id)
    return job


def report(session: Session, job_id: int, *, step: str | None = None,
           progress: float | None = None, line: str | None = None,
           timing: tuple[str, float] | None = None) -> None:
    """Record what the worker is doing, in its own short transaction."""
    job = session.get(Job, job_id)
    if job is None:
        return
    if step is not None:
        job.step = step[:64]
    if progress is not None:
        job.progress = max(0.0, min(1.0, progress))
    if line is not None:
        stamped = f"{utcnow():%H:%M:%S} {line.rstrip()}\n"
        job.log = (job.log + stamped)[-LOG_LIMIT:]
    if timing is not None:
        job.timings = {**job.timings, timing[0]: round(timing[1], 3)}
    session.add(job)
    session.commit()


def finish(session: Session, job_id: int, status: JobStatus, result: dict | None = None,
           error: str | None = None) -> None:
    job = session.get(Job, job_id)
    if job is None:
        return
    job.status = status
    job.finished_at = utcnow()
    job.progress = 1.0 if status == JobStatus.succeeded else job.progress
    job.result = result or {}
    job.error = error
    session.add(job)
    session.commit()
