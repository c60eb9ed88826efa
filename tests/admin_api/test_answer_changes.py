"""The answers feed (``/api/v1/answers/changes``) over a real database, SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from admin_api import crud
from admin_api.models import Answer
from common.config import get_settings
from common.db import get_engine
from retrieval.answers import AnswerData, AnswerStatus


def _session() -> Session:
    return Session(get_engine(get_settings().database_url))


def _changes(client: TestClient, since: int, **params: int) -> dict:
    reply = client.get("/api/v1/answers/changes", params={"since": since, **params})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_feed_starts_with_every_published_answer(client: TestClient) -> None:
    first = _changes(client, 0)
    assert len(first["upserts"]) == 80 and not first["removed"] and not first["more"]
    assert {a["id"] for a in first["upserts"]} >= {101, 703, 901}
    again = _changes(client, first["version"])
    assert again == {"version": first["version"], "upserts": [], "removed": [], "more": False,
                     "calibration": first["calibration"], "calibration_revision": 1}


def test_the_feed_carries_the_thresholds_in_force(client: TestClient, auth: dict) -> None:
    """Seeded from the thresholds file on first read; then whatever an admin saved, on every
    poll (a poll that finds no answer changed still tells the retriever the revision)."""
    from retrieval.decision import Calibration

    first = _changes(client, 0)
    seeded = Calibration.load(get_settings().retriever_thresholds)
    assert Calibration.from_dict(first["calibration"], "the feed") == seeded
    body = {"without_ranking": {"fallback": 0.7, "answer": 0.8, "margin": 0.02},
            "with_ranking": {"fallback": 1.8, "answer": 1.9, "margin": 0.0}, "note": "test"}
    assert client.put("/api/v1/thresholds", json=body,
                      headers=auth["admin"]).status_code == 200
    feed = _changes(client, first["version"])
    assert feed["calibration_revision"] == 2 and not feed["upserts"]
    assert feed["calibration"]["without_ranking"] == body["without_ranking"]
    assert feed["calibration"]["boost"] == seeded.boost


def test_each_write_appears_once_in_order(client: TestClient) -> None:
    start = _changes(client, 0)["version"]
    with _session() as session:
        crud.create_answers(session, [AnswerData(id=5000, title="Opening hours",
                                                 body="We are open every day.",
                                                 status="published")])
        session.commit()
        crud.create_answers(session, [AnswerData(id=5001, title="Draft", body="Not yet.")])
        session.commit()
        answer = session.get(Answer, 101)
        crud.update_answer(session, answer, {"body": "Cards arrive within three working days now."})
        session.commit()
        crud.set_status(session, session.get(Answer, 102), AnswerStatus.draft)
        session.commit()
        crud.delete_answer(session, session.get(Answer, 103))
        session.commit()
    feed = _changes(client, start)
    assert [a["id"] for a in feed["upserts"]] == [5000, 101]
    assert feed["upserts"][1]["body"] == "Cards arrive within three working days now."
    assert feed["removed"] == [5001, 102, 103]  # a draft is only ever reported as removed
    assert feed["version"] == start + 5
    assert "Not yet." not in str(feed)


def test_pages_never_split_a_version(client: TestClient) -> None:
    start = _changes(client, 0)["version"]
    with _session() as session:
        for answer_id in (104, 105, 106):
            crud.delete_answer(session, session.get(Answer, answer_id))
            session.commit()
    pages, since = [], 0
    while True:
        page = _changes(client, since, limit=2)
        pages.append(page)
        since = page["version"]
        if not page["more"]:
            break
    # The seed (one version; 77 answers left) comes whole in the first page despite limit=2.
    assert len(pages[0]["upserts"]) == 77 and pages[0]["version"] == start
    assert pages[0]["more"] and len(pages) == 3  # then the three deletions, two per page
    removed = [i for p in pages for i in p["removed"]]
    upserted = {a["id"] for p in pages for a in p["upserts"]}
    assert removed == [104, 105, 106] and len(upserted) == 77


def test_feed_refuses_bad_parameters(client: TestClient) -> None:
    for params in ({"since": -1}, {"since": "abc"}, {"since": 0, "limit": 0},
                   {"since": 0, "limit": 10**6}):
        reply = client.get("/api/v1/answers/changes", params=params)
        assert reply.status_code == 422, params
