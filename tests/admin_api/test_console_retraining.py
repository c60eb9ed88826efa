"""The console's retraining screen over real HTTP (SQLite and PostgreSQL): admins start and
cancel jobs with their options, staff only watch, the live panel stops polling when a job
ends, and the history tells each job's outcome."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from admin_api.models import Job
from common.db import get_engine
from learning import jobs
from learning.models import JobStatus
from tests.admin_api.test_console import signed_in


def test_an_admin_starts_and_cancels_a_job_and_staff_only_watch(client: TestClient,
                                                                auth: dict) -> None:
    staff, staff_csrf = signed_in(client, auth["staff"])
    page = staff.get("/console/retraining").text
    assert "No jobs yet." in page and "Start retraining" not in page
    assert "New approved examples since the last job" in page
    assert staff.post("/console/retraining", headers={"X-CSRF-Token": staff_csrf},
                      data={"tune_trials": "0"}).status_code == 403

    admin, csrf = signed_in(client, auth["admin"])
    assert "Start retraining" in admin.get("/console/retraining").text
    bad = admin.post("/console/retraining", headers={"X-CSRF-Token": csrf},
                     data={"tune_trials": "500"})
    assert bad.status_code == 422 and "tune_trials" in bad.text
    started = admin.post("/console/retraining", headers={"X-CSRF-Token": csrf},
                         data={"tune_trials": "2", "limit_per_intent": "5"})
    assert started.status_code == 200, started.text
    job_id = int(started.headers["hx-redirect"].rsplit("/", 1)[1])
    with Session(get_engine()) as session:
        job = session.get(Job, job_id)
        assert job.params == {"tune_trials": 2, "limit_per_intent": 5, "promote": False}
    again = admin.post("/console/retraining", headers={"X-CSRF-Token": csrf},
                       data={"promote": "true"})
    assert again.status_code == 409 and "already" in again.text

    live = staff.get(f"/console/retraining/{job_id}/live")
    assert live.status_code == 200 and "queued" in live.text
    assert "Cancel the job" not in live.text  # staff watch
    assert staff.post(f"/console/retraining/{job_id}/cancel",
                      headers={"X-CSRF-Token": staff_csrf}).status_code == 403
    assert "Cancel the job" in admin.get(f"/console/retraining/{job_id}").text
    cancelled = admin.post(f"/console/retraining/{job_id}/cancel",
                           headers={"X-CSRF-Token": csrf})
    assert cancelled.status_code == 200 and "cancel requested" in cancelled.text
    ended = staff.get(f"/console/retraining/{job_id}/live")
    assert ended.status_code == 286 and "cancelled" in ended.text  # the poll stops here
    history = staff.get("/console/retraining", params={"status": "cancelled"}).text
    assert f'/console/retraining/{job_id}"' in history


def test_the_live_panel_shows_step_progress_timings_and_the_outcome(client: TestClient,
                                                                    auth: dict) -> None:
    with Session(get_engine()) as session:
        job = jobs.enqueue(session, "ada", {"promote": True})
        session.commit()
        claimed = jobs.claim(session, "test-worker")
        assert claimed is not None and claimed.id == job.id
        jobs.report(session, job.id, step="train", progress=0.4, timing=("build", 3.2),
                    line="building the data")
        jobs.report(session, job.id, line="training <b>now</b>")
        job_id = job.id
    staff, _ = signed_in(client, auth["staff"])
    live = staff.get(f"/console/retraining/{job_id}/live")
    assert live.status_code == 200
    assert "train" in live.text and 'value="0.4"' in live.text and "3.2" in live.text
    assert "training &lt;b&gt;now&lt;/b&gt;" in live.text
    with Session(get_engine()) as session:
        jobs.finish(session, job_id, JobStatus.succeeded, result={
            "model_id": "m-new", "model_version_id": 1, "promoted": False,
            "gate": {"passed": False, "checks": [], "reasons": ["worse"]}})
        session.commit()
    done = staff.get(f"/console/retraining/{job_id}/live")
    assert done.status_code == 286 and "rejected by the gate" in done.text
