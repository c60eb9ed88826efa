"""Retraining jobs: the API and the state machine in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from admin_api.models import Job, utcnow
from common.db import get_engine
from learning import jobs


def test_admins_queue_a_job_and_staff_follow_it(client: TestClient, auth: dict) -> None:
    assert client.post("/api/v1/retrain", json={}, headers=auth["staff"]).status_code == 403
    made = client.post("/api/v1/retrain", json={"tune_trials": 2, "limit_per_intent": 10},
                       headers=auth["admin"])
    assert made.status_code == 202, made.text
    job = made.json()
    assert job["status"] == "queued" and job["requested_by"] == "ada"
    assert job["params"] == {"tune_trials": 2, "limit_per_intent": 10, "promote": True}
    again = client.post("/api/v1/retrain", json={}, headers=auth["admin"])
    assert again.status_code == 409 and f"job {job['id']} is already queued" in again.text
    listed = client.get("/api/v1/jobs", headers=auth["staff"]).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == job["id"]
    detail = client.get(f"/api/v1/jobs/{job['id']}", headers=auth["staff"]).json()
    assert detail["log"] == "" and detail["progress"] == 0.0
    assert client.get("/api/v1/jobs/999", headers=auth["staff"]).status_code == 404
    audit = client.get("/api/v1/audit", params={"action": "job.create"},
                       headers=auth["admin"]).json()
    assert audit["total"] == 1


def test_bad_job_requests_are_refused_with_reasons(client: TestClient, auth: dict) -> None:
    for body in ({"tune_trials": -1}, {"tune_trials": "many"}, {"limit_per_intent": 0},
                 {"unknown": 1}, [1, 2]):
        reply = client.post("/api/v1/retrain", json=body, headers=auth["admin"])
        assert reply.status_code == 422, (body, reply.text)
    broken = client.post("/api/v1/retrain", content=b"{not json",
                         headers={**auth["admin"], "Content-Type": "application/json"})
    assert broken.status_code == 422
    assert client.get("/api/v1/jobs", headers=auth["staff"]).json()["total"] == 0


def test_cancel_a_queued_job_at_once_and_a_running_one_by_flag(client: TestClient,
                                                              auth: dict) -> None:
    first = client.post("/api/v1/retrain", json={}, headers=auth["admin"]).json()
    cancelled = client.post(f"/api/v1/jobs/{first['id']}/cancel", headers=auth["admin"])
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(f"/api/v1/jobs/{first['id']}/cancel",
                       headers=auth["admin"]).status_code == 409
    second = client.post("/api/v1/retrain", json={}, headers=auth["admin"]).json()
    with Session(get_engine()) as session:
        claimed = jobs.claim(session, "test-worker")
        assert claimed is not None and claimed.id == second["id"]
    assert client.post(f"/api/v1/jobs/{second['id']}/cancel",
                       headers=auth["staff"]).status_code == 403
    flagged = client.post(f"/api/v1/jobs/{second['id']}/cancel", headers=auth["admin"]).json()
    assert flagged["status"] == "running" and flagged["cancel_requested"] is True
    with Session(get_engine()) as session:
        assert jobs.beat(session, second["id"], "test-worker") is False  # the worker stops


def test_one_job_runs_at_a_time_and_a_dead_workers_job_fails(client: TestClient) -> None:
    with Session(get_engine()) as session:
        first = jobs.enqueue(session, "ada", {})
        session.commit()
        assert jobs.claim(session, "worker-a").id == first.id
        second = jobs.enqueue(session, "ada", {})
        session.commit()
        assert jobs.claim(session, "worker-b") is None  # one running already
        assert jobs.beat(session, first.id, "worker-a") is True
        assert jobs.beat(session, first.id, "worker-b") is False  # not its job
        jobs.report(session, first.id, step="train", progress=0.5, line="training",
                    timing=("snapshot", 1.25))
        assert jobs.reap_stale(session, timedelta(seconds=60)) == []
        later = utcnow() + timedelta(seconds=61)
        assert jobs.reap_stale(session, timedelta(seconds=60), now=later) == [first.id]
        session.expire_all()
        dead = session.get(Job, first.id)
        assert dead.status == "failed" and "worker-a stopped its heartbeat" in dead.error
        assert dead.step == "train" and dead.timings == {"snapshot": 1.25}
        assert "training" in dead.log
        assert jobs.claim(session, "worker-b").id == second.id  # the queue goes on
        jobs.finish(session, second.id, jobs.JobStatus.succeeded, {"model_id": "x"})
        session.expire_all()
        done = session.get(Job, second.id)
        assert done.status == "succeeded" and done.progress == 1.0 and done.finished_at
