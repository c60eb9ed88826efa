"""The retraining worker as a real process: kill -9 in the middle of a job, recovery by the
next worker, a whole job through the real pipeline (rasa train, evaluation, gate, registry),
and cancelling a running job."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from tests.conftest import (
    BIN_DIR,
    PROJECT_ROOT,
    banking_examples,
    heldout_csv,
    helpdesk_env,
    processes_of,
)


def CORRECTIONS() -> list:  # a constant, computed late (data/ is read)
    """Staff corrections: BANKING77 train examples past the 12 per intent the seed keeps."""
    return [e for i, e in enumerate(banking_examples("train", 16)) if i % 16 >= 12]


def _job(url: str, job_id: int):  # admin_api.models.Job
    from admin_api.models import Job
    from common.db import get_engine

    with Session(get_engine(url)) as session:
        return session.get(Job, job_id)


def _wait(what: Callable[[], bool], seconds: float, message: Callable[[], str]) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, message()
        time.sleep(0.3)


@pytest.fixture
def project(tmp_path: Path, tiny_model: Path) -> Iterator[dict]:
    """A var dir whose registry serves ``tiny_model``, with a few staff corrections."""
    from admin_api import migrate
    from admin_api.models import ExampleSource, ExampleStatus, TrainingExample, utcnow
    from common.db import get_engine
    from learning import jobs, registry

    var_dir = tmp_path / "var"
    url = f"sqlite:///{var_dir / 'admin.db'}"
    migrate.upgrade(url)
    heldout = heldout_csv(tmp_path / "heldout.csv")
    with Session(get_engine(url)) as session:
        registry.promote(session, registry.register(session, tiny_model), "test")
        for example in CORRECTIONS():
            session.add(TrainingExample(text=example.text, intent=example.intent,
                                        source=ExampleSource.feedback.value,
                                        status=ExampleStatus.approved.value,
                                        approved_by="sam", approved_at=utcnow()))
        ids = [jobs.enqueue(session, "ada", {"limit_per_intent": 12, "promote": True}).id]
        session.commit()
    env = helpdesk_env(var_dir, HELPDESK_JOB_HEARTBEAT_SECONDS="1",
                       HELPDESK_JOB_STALE_SECONDS="3", HELPDESK_WORKER_POLL_SECONDS="0.5",
                       HELPDESK_RELIABILITY_FOLDS="2", HELPDESK_RELIABILITY_MAX_EXAMPLES="120",
                       HELPDESK_HELDOUT_CSV=str(heldout), HELPDESK_GATE_MIN_SUPPORT="3")
    started: list[subprocess.Popen] = []

    def worker(*args: str) -> subprocess.Popen:
        log = (tmp_path / f"worker{len(started)}.log").open("w")
        process = subprocess.Popen([str(BIN_DIR / "helpdesk"), "worker", *args], env=env,
                                   cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        return process

    yield {"url": url, "var_dir": var_dir, "jobs": ids, "worker": worker, "tmp": tmp_path}
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
    for pid in processes_of(var_dir):
        os.kill(pid, signal.SIGKILL)


def _log(tmp: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(tmp.glob("worker*.log")))


def _wait_for_training(project: dict, job_id: int) -> None:
    _wait(lambda: _job(project["url"], job_id).step.startswith("train"), 120,
          lambda: f"the job never reached training:\n{_log(project['tmp'])}")


def test_a_killed_workers_job_fails_and_the_next_worker_runs_the_queue(project: dict) -> None:
    from common.db import get_engine
    from learning import jobs, registry

    url, [first] = project["url"], project["jobs"]
    doomed = project["worker"]()
    _wait_for_training(project, first)
    with Session(get_engine(url)) as session:
        # Queued behind the first; the worker that is killed never gets to it.
        second = jobs.enqueue(session, "ada", {"limit_per_intent": 12, "promote": True}).id
        session.commit()
    time.sleep(2)  # rasa train is running now
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    # Its rasa train child dies with it (no orphan keeps training and writing files).
    _wait(lambda: not processes_of(project["var_dir"]), 15,
          lambda: f"processes left behind: {processes_of(project['var_dir'])}")
    assert _job(url, first).status == "running"  # nobody knows yet

    survivor = project["worker"]("--once")
    assert survivor.wait(600) == 0, _log(project["tmp"])
    dead, done = _job(url, first), _job(url, second)
    assert dead.status == "failed" and "stopped its heartbeat" in dead.error
    assert done.status == "succeeded", (done.error, done.log)
    assert done.progress == 1.0 and done.worker != dead.worker
    assert {"snapshot", "build", "train", "evaluate", "reliability", "gate"} <= set(done.timings)
    assert "promoted to production" in done.log
    result = done.result
    assert result["promoted"] is True and result["gate"]["passed"] is True
    assert len(result["data_hash"]) == 64
    with Session(get_engine(url)) as session:
        current = registry.production(session)
        assert current.model_id == result["model_id"] and current.job_id == second
        assert current.promoted_by == f"job {second}"
        assert "## Reliability" in current.report and "2-fold cross-validation" in current.report
        assert current.metrics["regression"]["examples"] == len(CORRECTIONS())
        assert current.metrics["production"] is not None  # judged against the old model
        per_intent = current.metrics["candidate"]["per_intent"]
        assert per_intent and all({"recall", "f1-score", "support"} <= set(row)
                                  for row in per_intent.values())
        assert current.metrics["production"]["per_intent"]
    snapshot = project["var_dir"] / "retrain" / f"job-{second}" / "snapshot.json"
    assert '"approved_example_ids": [' in snapshot.read_text()
    # The candidate's confusion picture, which the console's model page shows.
    picture = snapshot.parent / "confusion_matrix.png"
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_cancelling_a_running_job_stops_its_training(project: dict) -> None:
    from admin_api.models import Job
    from common.db import get_engine
    from learning import jobs

    url, [job_id] = project["url"], project["jobs"]
    worker = project["worker"]()
    _wait_for_training(project, job_id)
    with Session(get_engine(url)) as session:
        jobs.request_cancel(session, session.get(Job, job_id), "ada")
        session.commit()
    _wait(lambda: _job(url, job_id).status == "cancelled", 20,
          lambda: f"not cancelled:\n{_log(project['tmp'])}")
    assert worker.poll() is None  # the worker lives on for the next job
    assert _job(url, job_id).result == {}
    models = list((project["var_dir"] / "registry").glob("*.tar.gz"))
    assert models == []  # nothing half-trained was kept
