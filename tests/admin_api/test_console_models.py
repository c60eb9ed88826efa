"""The console's model registry over real HTTP (SQLite and PostgreSQL): figures, the gate's
reasons for a rejection, worse intents first, the confusion picture, comparison, and promote
and roll back for admins only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from admin_api.models import ModelStatus, ModelVersion
from common.config import get_settings
from common.db import get_engine
from learning import jobs, registry
from learning.worker import job_dir
from nlu.evaluation import plot_confusion
from tests.admin_api.test_console import signed_in
from tests.admin_api.test_registry import archive


def _summary(accuracy: float, recalls: dict[str, float]) -> dict:
    return {"accuracy": accuracy, "macro_f1": accuracy - 0.01, "oos_recall": 0.7,
            "latency_ms": {"p50": 4.0, "p95": 7.5},
            "per_intent": {k: {"recall": v, "f1-score": v, "support": 40} for k, v in
                           recalls.items()}}


@pytest.fixture
def registered(client: TestClient, tmp_path: Path) -> dict[str, int]:
    gate = {"passed": False, "checks": [
        {"check": "accuracy", "passed": False,
         "detail": "held-out accuracy 0.8100 below production's 0.9000 - 0.0050"},
        {"check": "latency", "passed": True, "detail": "p95 latency 7.5 ms (budget 50 ms)"}],
        "reasons": ["held-out accuracy 0.8100 below production's 0.9000 - 0.0050"]}
    with Session(get_engine()) as session:
        good = registry.register(session, archive(tmp_path, "good-one"), metrics={
            "candidate": _summary(0.9, {"card_arrival": 0.95, "exchange_rate": 0.9})},
            gate={"passed": True, "checks": [], "reasons": []},
            report="# Maturity report: good\n\n| measure | value |\n|---|---|\n| x | <b>1</b> |")
        registry.promote(session, good, "ada")
        bad = registry.register(session, archive(tmp_path, "bad-one"), metrics={
            "candidate": _summary(0.81, {"card_arrival": 0.6, "exchange_rate": 0.92}),
            "production": _summary(0.9, {"card_arrival": 0.95, "exchange_rate": 0.9})},
            gate=gate, report="# Maturity report: bad", job_id=None,
            status=ModelStatus.rejected)
        session.commit()
        return {"good": good.id, "bad": bad.id}


def test_the_registry_lists_figures_and_a_rejected_model_shows_why(
        client: TestClient, auth: dict, registered: dict[str, int]) -> None:
    staff, _ = signed_in(client, auth["staff"])
    page = staff.get("/console/models").text
    assert "good-one" in page and "bad-one" in page and "81.0 %" in page and "7.5 ms" in page
    rejected = staff.get("/console/models", params={"status": "rejected"}).text
    assert "bad-one" in rejected and "good-one" not in rejected
    bad = staff.get(f"/console/models/{registered['bad']}").text
    assert "Release gate: rejected" in bad and "Why it was rejected" in bad
    assert "below production" in bad
    # The intent that got worse than production comes first, marked.
    assert bad.index("card_arrival") < bad.index("exchange_rate")
    assert re.search(r'<tr class="worse"><td>card_arrival', bad)
    assert "Promote to production" not in bad  # staff see, admins act
    good = staff.get(f"/console/models/{registered['good']}").text
    assert "<table>" in good and "&lt;b&gt;1&lt;/b&gt;" in good  # markdown, HTML as text
    both = staff.get("/console/models/compare",
                     params={"a": registered["good"], "b": registered["bad"]}).text
    assert "A: good-one" in both and "B: bad-one" in both and '<tr class="worse">' in both
    assert staff.get("/console/models/compare", params={"a": 1}).status_code == 422


def test_a_job_models_confusion_picture_is_shown(client: TestClient, auth: dict,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    with Session(get_engine()) as session:
        job = jobs.enqueue(session, "ada", {"promote": False})
        entry = registry.register(session, archive(tmp_path, "pictured"), job_id=job.id)
        session.commit()
        key, job_id = entry.id, job.id
    staff, _ = signed_in(client, auth["staff"])
    assert "No picture for this model" in staff.get(f"/console/models/{key}").text
    assert staff.get(f"/console/models/{key}/confusion.png").status_code == 404
    folder = job_dir(get_settings(), job_id)  # the picture lives in the job's folder
    folder.mkdir(parents=True, exist_ok=True)
    plot_confusion({"labels": ["a", "b"], "matrix": [[3, 1], [0, 4]]},
                   folder / "confusion_matrix.png")
    assert f'src="/console/models/{key}/confusion.png"' in staff.get(f"/console/models/{key}").text
    picture = staff.get(f"/console/models/{key}/confusion.png")
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")


def test_only_admins_promote_and_roll_back_from_the_console(
        client: TestClient, auth: dict, registered: dict[str, int]) -> None:
    staff, staff_csrf = signed_in(client, auth["staff"])
    refused = staff.post(f"/console/models/{registered['bad']}/promote",
                         headers={"X-CSRF-Token": staff_csrf})
    assert refused.status_code == 403
    assert staff.post("/console/models/rollback",
                      headers={"X-CSRF-Token": staff_csrf}).status_code == 403
    admin, csrf = signed_in(client, auth["admin"])
    promoted = admin.post(f"/console/models/{registered['bad']}/promote",
                          headers={"X-CSRF-Token": csrf})
    assert promoted.status_code == 200 and "bad-one is in production" in promoted.text
    with Session(get_engine()) as session:
        assert session.get(ModelVersion, registered["bad"]).status == "production"
    back = admin.post("/console/models/rollback", headers={"X-CSRF-Token": csrf})
    assert back.status_code == 200 and "good-one is in production again" in back.text
    again = admin.post("/console/models/rollback", headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409  # nothing further back: said in place
