"""``helpdesk worker``: runs queued jobs (retraining runs, and whatever other kinds the caller
hands it, such as the threshold simulator's replays), one at a time, at low CPU priority.

``helpdesk serve`` starts one; more can run on other machines against the same database.
Each poll it fails jobs of dead workers (no heartbeat), queues a scheduled run when the cron
expression is due and enough new examples were approved, and claims the next queued job.
While a job runs, a side thread beats its heartbeat and watches for a cancel request, which
stops the pipeline (the training process is killed).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, select

from common.config import Settings
from learning import pipeline

# A job kind's work: (job id, params, progress, settings) -> the job's result.
Handler = Callable[[int, dict, pipeline.Progress, Settings], dict]


def job_dir(settings: Settings, job_id: int) -> Path:
    """Where a job keeps its build, snapshot, training log, report and confusion picture."""
    return settings.registry_dir.parent / "retrain" / f"job-{job_id}"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Schedule:
    """When the cron expression is next due, counted from the worker's start (a restarted
    worker does not fire at once for a slot it missed while down)."""

    def __init__(self, cron: str, now: datetime) -> None:
        from apscheduler.triggers.cron import CronTrigger

        self.trigger = CronTrigger.from_crontab(cron, timezone=timezone.utc)
        self.last = now.replace(tzinfo=timezone.utc)

    def due(self, now: datetime) -> bool:
        now = now.replace(tzinfo=timezone.utc)
        upcoming = self.trigger.get_next_fire_time(None, self.last + timedelta(seconds=1))
        if upcoming is None or upcoming > now:
            return False
        self.last = now
        return True


def new_approved_examples(session: Session) -> int:
    """Approved examples newer than the last retraining job (whatever became of it)."""
    from learning.models import ExampleStatus, Job, TrainingExample

    last = session.exec(select(func.max(Job.created_at))).one()  # type: ignore[call-overload]
    query = select(func.count()).select_from(TrainingExample).where(  # type: ignore[call-overload]
        TrainingExample.status == ExampleStatus.approved.value)
    if last is not None:
        query = query.where(TrainingExample.approved_at > last)  # type: ignore[operator]
    return int(session.exec(query).one())


def maybe_schedule(session: Session, schedule: Schedule | None, settings: Settings,
                   now: datetime) -> str | None:
    """Queue the scheduled run if it is due; returns what happened, for the log."""
    from learning import jobs

    if schedule is None or not schedule.due(now):
        return None
    fresh = new_approved_examples(session)
    if fresh < settings.retrain_min_new_examples:
        return (f"scheduled retraining skipped: {fresh} new approved examples, "
                f"{settings.retrain_min_new_examples} needed")
    try:
        job = jobs.enqueue(session, "schedule", {"tune_trials": 0, "promote": True})
    except jobs.JobConflict as error:
        return f"scheduled retraining skipped: {error}"
    session.commit()
    return f"scheduled retraining queued as job {job.id} ({fresh} new approved examples)"


def _heartbeat(job_id: int, name: str, settings: Settings, stop: threading.Event,
               done: threading.Event) -> None:
    from common.db import get_engine
    from learning import jobs

    while not done.wait(settings.job_heartbeat_seconds):
        try:
            with Session(get_engine()) as session:
                if not jobs.beat(session, job_id, name):
                    stop.set()
        except Exception as error:  # a database hiccup must not kill the job
            print(f"heartbeat of job {job_id} failed: {error}", flush=True)


def retrain(job_id: int, params: dict, progress: pipeline.Progress, settings: Settings) -> dict:
    return pipeline.run(params, progress, settings, job_dir(settings, job_id),
                        settings.registry_dir, job_id=job_id, actor=f"job {job_id}")


def execute(job_id: int, params: dict, name: str, settings: Settings, kind: str = "retrain",
            handlers: Mapping[str, Handler] | None = None) -> str:
    """Run one claimed job to its end state; returns that state."""
    from common.db import get_engine
    from learning import jobs
    from learning.models import JobStatus
    from learning.train import TrainingFailed

    engine = get_engine()

    def record(**fields: object) -> None:
        with Session(engine) as session:
            jobs.report(session, job_id, **fields)  # type: ignore[arg-type]

    def log(line: str) -> None:
        print(f"job {job_id}: {line}", flush=True)
        record(line=line)

    progress = pipeline.Progress(
        step=lambda step, fraction: record(step=step, progress=fraction),
        log=lambda line: log(line),
        timing=lambda step, seconds: record(timing=(step, seconds)),
    )
    done = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(job_id, name, settings, progress.stop, done),
                            daemon=True)
    beat.start()
    handler = {"retrain": retrain, **(handlers or {})}.get(kind)
    try:
        if handler is None:
            raise TrainingFailed(f"this worker runs no {kind!r} jobs")
        result = handler(job_id, params, progress, settings)
        status, error = JobStatus.succeeded, None
    except (pipeline.Cancelled, TrainingFailed) as failure:
        result = {}
        if progress.stop.is_set():
            status, error = JobStatus.cancelled, "cancelled on request"
        else:
            status, error = JobStatus.failed, str(failure)
    except Exception:  # any failure ends the job, with its traceback
        result, status, error = {}, JobStatus.failed, traceback.format_exc()[-4000:]
    finally:
        done.set()
        beat.join()
    with Session(engine) as session:
        jobs.finish(session, job_id, status, result, error)
    print(f"job {job_id}: {status.value}" + (f" ({error.splitlines()[-1]})" if error else ""),
          flush=True)
    return status.value


def run(settings: Settings, once: bool = False,
        handlers: Mapping[str, Handler] | None = None) -> None:
    """Poll and run jobs until killed (``once``: until no job is queued; a job another worker
    runs, or ran before it died, is waited for or reaped first)."""
    from common.db import get_engine, utcnow
    from learning import jobs
    from learning.models import JobStatus

    if settings.worker_nice:
        os.nice(settings.worker_nice)
    name = worker_name()
    schedule = Schedule(settings.retrain_cron, utcnow()) if settings.retrain_cron else None
    print(f"worker {name} polling every {settings.worker_poll_seconds:g}s"
          + (f", schedule {settings.retrain_cron!r} UTC" if schedule else ", no schedule"),
          flush=True)
    engine = get_engine()
    while True:
        with Session(engine) as session:
            for job_id in jobs.reap_stale(session, timedelta(seconds=settings.job_stale_seconds)):
                print(f"job {job_id}: failed, its worker stopped beating", flush=True)
            message = maybe_schedule(session, schedule, settings, utcnow())
            if message:
                print(message, flush=True)
            job = jobs.claim(session, name)
            claimed = ((job.id, dict(job.params), job.kind) if job and job.id is not None
                       else None)
            waiting = once and claimed is None and any(
                j.status == JobStatus.queued.value for j in jobs.active(session))
        if claimed is not None:
            execute(claimed[0], claimed[1], name, settings, claimed[2], handlers)
            continue
        if once and not waiting:
            return
        time.sleep(settings.worker_poll_seconds)
