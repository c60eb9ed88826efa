"""The decision thresholds in the admin database (SQLite and PostgreSQL): seeded from the
thresholds file, changed by admins only, audited with what they replaced, refused when bad."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api.models import AuditEntry
from common.config import get_settings
from common.db import get_engine
from retrieval.decision import Calibration

STRICT = {"without_ranking": {"fallback": 0.9, "answer": 1.0, "margin": 0.05},
          "with_ranking": {"fallback": 2.0, "answer": 2.2, "margin": 0.01},
          "note": "fewer wrong answers after the complaint of Monday"}


def test_the_first_read_seeds_the_setting_from_the_thresholds_file(client: TestClient,
                                                                   auth: dict) -> None:
    seeded = Calibration.load(get_settings().retriever_thresholds)
    reply = client.get("/api/v1/thresholds", headers=auth["staff"])
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["revision"] == 1 and body["author"] == "seed"
    assert body["without_ranking"] == vars(seeded.without_ranking)
    assert body["with_ranking"] == vars(seeded.with_ranking)
    assert (body["boost"], body["support"]) == (seeded.boost, seeded.support)
    assert body["created_at"].endswith("+00:00")
    # Reading again seeds nothing more.
    assert client.get("/api/v1/thresholds", headers=auth["staff"]).json()["revision"] == 1
    assert [h["revision"] for h in client.get("/api/v1/thresholds/history",
                                              headers=auth["staff"]).json()] == [1]


def test_an_admin_saves_new_thresholds_and_the_audit_log_keeps_the_old_ones(
        client: TestClient, auth: dict) -> None:
    before = client.get("/api/v1/thresholds", headers=auth["admin"]).json()
    reply = client.put("/api/v1/thresholds", json=STRICT, headers=auth["admin"])
    assert reply.status_code == 200, reply.text
    saved = reply.json()
    assert saved["revision"] == 2 and saved["author"] == "ada"
    assert saved["without_ranking"] == STRICT["without_ranking"]
    assert saved["note"] == STRICT["note"]
    # The weights are the calibration's: a threshold save never moves them.
    assert (saved["boost"], saved["support"]) == (before["boost"], before["support"])
    assert client.get("/api/v1/thresholds", headers=auth["staff"]).json() == saved
    history = client.get("/api/v1/thresholds/history", headers=auth["staff"]).json()
    assert [h["revision"] for h in history] == [2, 1]
    with Session(get_engine()) as session:
        [entry] = session.exec(select(AuditEntry).where(
            AuditEntry.action == "thresholds.update")).all()
    assert entry.actor == "ada" and entry.entity_id == "2"
    assert entry.details["before"]["without_ranking"] == before["without_ranking"]
    assert entry.details["after"]["with_ranking"] == STRICT["with_ranking"]
    assert entry.details["note"] == STRICT["note"]


def test_staff_cannot_change_the_thresholds(client: TestClient, auth: dict) -> None:
    assert client.put("/api/v1/thresholds", json=STRICT, headers=auth["staff"]).status_code == 403
    assert client.put("/api/v1/thresholds", json=STRICT).status_code == 401
    assert client.get("/api/v1/thresholds", headers=auth["staff"]).json()["revision"] == 1


def test_bad_thresholds_are_refused_with_the_field_named(client: TestClient, auth: dict) -> None:
    def put(change: dict) -> tuple[int, str]:
        body = {**STRICT, **change}
        reply = client.put("/api/v1/thresholds", json=body, headers=auth["admin"])
        return reply.status_code, reply.text

    for change, field in (
            ({"without_ranking": {"fallback": 0.5, "answer": 0.6, "margin": -0.1}}, "margin"),
            ({"with_ranking": {"fallback": "high", "answer": 0.6, "margin": 0.1}}, "fallback"),
            ({"with_ranking": {"fallback": 1e9, "answer": 0.6, "margin": 0.1}}, "fallback"),
            ({"with_ranking": {"fallback": 0.5, "answer": 0.6}}, "margin"),
            ({"with_ranking": {"fallback": 0.5, "answer": 0.6, "margin": 0.1, "boost": 2}},
             "boost"),
            ({"note": "x" * 501}, "note")):
        status, text = put(change)
        assert status == 422 and field in text, (change, text)
    assert client.get("/api/v1/thresholds", headers=auth["staff"]).json()["revision"] == 1
