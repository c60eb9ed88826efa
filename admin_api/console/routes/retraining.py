"""Retraining (staff watch, admins act): start a job with its options, follow it live (step,
progress, per-step times, the log's tail), cancel it, and the history of jobs with their
outcome; the schedule and the minimum of new examples are shown. The writes are the API's."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from admin_api.api.deps import AdminUser, SessionDep, StaffUser
from admin_api.api.paging import Paging
from admin_api.api.routes import jobs as api
from admin_api.console.forms import choice
from admin_api.console.pages import is_htmx, notice, render
from admin_api.models import JobCreate, JobStatus
from common.config import get_settings
from learning.models import FINISHED_JOB_STATUSES
from learning.worker import new_approved_examples

router = APIRouter(prefix="/retraining")
LOG_TAIL = 40
STOP_POLLING = 286  # htmx stops a polling trigger on this status


@router.get("", response_class=HTMLResponse)
def retraining_page(request: Request, session: SessionDep, caller: StaffUser,
                    status: str | None = Query(None, max_length=20),
                    paging: Paging = Depends()) -> HTMLResponse:
    state = choice(JobStatus, status, "status")
    page = api.list_jobs(status_=state, kind="retrain", sort="-created_at", paging=paging,
                         session=session, _=caller)
    if is_htmx(request):
        return render(request, "retraining/_history.html", caller, page=page,
                      status=state.value if state else "")
    settings = get_settings()
    running = next((j for j in api.list_jobs(status_=None, kind="retrain", sort="-created_at",
                                             paging=Paging(limit=5, offset=0),
                                             session=session, _=caller)["items"]
                    if j.status not in FINISHED_JOB_STATUSES), None)
    return render(request, "retraining/page.html", caller, page=page,
                  status=state.value if state else "", running=running,
                  schedule=settings.retrain_cron, min_new=settings.retrain_min_new_examples,
                  new_examples=new_approved_examples(session),
                  statuses=[s.value for s in JobStatus])


@router.post("", response_class=HTMLResponse)
def start(request: Request, session: SessionDep, caller: AdminUser,
          tune_trials: int = Form(0, ge=0, le=200),
          limit_per_intent: int | None = Form(None, ge=1, le=100_000),
          promote: bool = Form(False)) -> Response:
    job = api.start_retraining(body=JobCreate(tune_trials=tune_trials,
                                              limit_per_intent=limit_per_intent,
                                              promote=promote),
                               session=session, caller=caller)
    return notice(request, f"Job {job.id} queued.",
                  headers={"HX-Redirect": f"/console/retraining/{job.id}"})


@router.get("/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, session: SessionDep, caller: StaffUser,
             job_id: int = api.JobId) -> HTMLResponse:
    job = api.read_job(job_id=job_id, session=session, _=caller)
    return render(request, "retraining/job.html", caller, job=job,
                  log=job.log.splitlines()[-LOG_TAIL:], done=job.status in FINISHED_JOB_STATUSES)


@router.get("/{job_id}/live", response_class=HTMLResponse)
def job_live(request: Request, session: SessionDep, caller: StaffUser,
             job_id: int = api.JobId) -> HTMLResponse:
    """The job's panel, polled while it runs; once it has ended, the last one stops the poll."""
    job = api.read_job(job_id=job_id, session=session, _=caller)
    done = job.status in FINISHED_JOB_STATUSES
    return render(request, "retraining/_live.html", caller, job=job, done=done,
                  log=job.log.splitlines()[-LOG_TAIL:],
                  status_code=STOP_POLLING if done else 200)


@router.post("/{job_id}/cancel", response_class=HTMLResponse)
def cancel(request: Request, session: SessionDep, caller: AdminUser,
           job_id: int = api.JobId) -> HTMLResponse:
    job = api.cancel_job(job_id=job_id, session=session, caller=caller)
    return notice(request, f"Job {job.id}: cancel requested; it stops within seconds and "
                           "promotes nothing.")
