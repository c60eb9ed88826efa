"""The threshold simulator over a real tracker store and admin database (SQLite and PostgreSQL):
a replay job scores the logged questions through the production model and the current answers
as the bot would, the outcomes under any thresholds are a recount of those scores, and the
cache follows erasures and never keeps half a replay."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api import simulator, thresholds
from admin_api.models import Answer, Job, ReplayTurn, utcnow
from admin_api.tracker import TrackerStore
from common.config import get_settings
from common.db import get_engine
from learning import jobs, pipeline, registry, worker
from retrieval.answers import AnswerStatus
from retrieval.decision import (
    ANSWER,
    CLARIFY,
    CLARIFY_OPTIONS,
    FALLBACK,
    Scored,
    decide_scored,
)
from tests.admin_api.test_console import signed_in
from tests.tracker_seed import Say, seed

ANSWERED = {"data": {"custom": {"data": {"answer_id": 101, "decision": "answer"}}}}
CLARIFIED = {"data": {"custom": {"data": {"answer_ids": [101, 102], "decision": "clarify"}}}}
NO_ANSWER = {"metadata": {"utter_action": "utter_no_answer"}}
# (what the customer wrote, what the bot did then): the first eight are the retriever's doing.
LOGGED = [("When will my new card arrive?", ANSWERED), ("my card still hasn't come", ANSWERED),
          ("What exchange rate do you use?", ANSWERED), ("I lost my card", CLARIFIED),
          ("how do I close my account", ANSWERED), ("blorp zing wibble", NO_ANSWER),
          ("can I use google pay", CLARIFIED), ("is there an age limit?", NO_ANSWER),
          ("/affirm", ANSWERED),  # a button: not a question
          ("thanks", {"text": "You're welcome!",
                      "metadata": {"utter_action": "utter_you_are_welcome"}})]  # small talk
REPLAYABLE = 8


def _conversations() -> tuple[dict[str, list[Say]], dict[str, float]]:
    conversations, ages = {}, {}
    for i, (text, bot) in enumerate(LOGGED):
        conversations[f"sim-{i}"] = [Say(text, "card_arrival", 0.6, "m-old", f"s-{i}",
                                         actions=["action_answer"],
                                         bot=[{"text": "a reply", **bot}])]
        ages[f"sim-{i}"] = 600.0 + i
    return conversations, ages


def _run_queued_replay(settings_name: str = "test-worker") -> Job:
    """What ``helpdesk worker`` does with the queued replay (in this process)."""
    with Session(get_engine()) as session:
        job = jobs.claim(session, settings_name)
        assert job is not None and job.kind == simulator.REPLAY
        job_id, params = job.id, dict(job.params)
    state = worker.execute(job_id, params, settings_name, get_settings(), job.kind,
                           {simulator.REPLAY: simulator.replay})
    with Session(get_engine()) as session:
        finished = session.get(Job, job_id)
        assert state == "succeeded", finished.error
        return finished


@pytest.fixture
def replayed(client: TestClient, auth: dict, tracker_url: str, tiny_model: Path) -> Job:
    with Session(get_engine()) as session:
        registry.promote(session, registry.register(session, tiny_model), "ada")
        session.commit()
    seed(tracker_url, *_conversations())
    today = utcnow().date().isoformat()
    reply = client.post("/api/v1/simulator/replays", json={"first": today, "last": today},
                        headers=auth["admin"])
    assert reply.status_code == 202, reply.text
    assert reply.json()["kind"] == "replay" and reply.json()["status"] == "queued"
    return _run_queued_replay()


def _rows(job_id: int) -> list[ReplayTurn]:
    """The replay's cached questions, in replay order."""
    with Session(get_engine()) as session:
        return list(session.exec(select(ReplayTurn).where(ReplayTurn.job_id == job_id)
                                 .order_by(ReplayTurn.id)))


def scored_turn(row: ReplayTurn) -> Scored:
    """What ``decide_scored`` reads of a cached question."""
    return Scored(row.top1, row.top2, row.has_ranking, row.exact)


def test_a_replay_scores_each_question_as_the_bot_would_now(replayed: Job,
                                                           tiny_model: Path, encoder) -> None:
    """Each cached score is what a one-by-one search gives, with the production model's
    ranking as that model serves it: the simulator decides on what the bot would see."""
    from nlu.rasa_component import ArchivedClassifier
    from retrieval.retriever import Retriever

    result = replayed.result
    assert result["turns"] == REPLAYABLE and result["thresholds_revision"] == 1
    with Session(get_engine()) as session:
        assert result["model_id"] == registry.production(session).model_id
        answers = [a.to_data() for a in session.exec(select(Answer).where(
            Answer.status == AnswerStatus.published.value))]
        calibration = thresholds.calibration_of(thresholds.in_force(session))
    assert result["answers"] == len(answers)
    rows = _rows(replayed.id)
    assert [r.logged for r in rows].count(FALLBACK) == 2 and len(rows) == REPLAYABLE
    texts = {f"s-{i}": text for i, (text, _) in enumerate(LOGGED)}
    classifier = ArchivedClassifier(tiny_model)
    retriever = Retriever(encoder, calibration, device="cpu")
    retriever.replace_all(answers)
    for row in rows:
        text = texts[row.turn_key]
        alone = retriever.search(text, k=CLARIFY_OPTIONS,
                                 intent_ranking=classifier.rankings([text])[0])
        assert row.top1 == pytest.approx(alone.hits[0].score, abs=1e-5)
        assert row.top2 == pytest.approx(alone.hits[1].score, abs=1e-5)
        assert (bool(row.has_ranking), bool(row.exact), row.answer_id) == \
            (alone.has_ranking, alone.exact, alone.top.answer_id)
        assert decide_scored(scored_turn(row), calibration) == alone.decision
    assert all(bool(r.has_ranking) for r in rows)  # the production model ranked every question


def test_outcomes_are_a_recount_of_the_replay_under_any_thresholds(
        client: TestClient, auth: dict, replayed: Job) -> None:
    in_force = client.get("/api/v1/thresholds", headers=auth["admin"]).json()
    same = {"without_ranking": in_force["without_ranking"],
            "with_ranking": in_force["with_ranking"]}
    reply = client.post("/api/v1/simulator/outcomes", json=same, headers=auth["admin"])
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["replay_job_id"] == replayed.id and body["turns"] == REPLAYABLE
    assert body["in_force"] == body["simulated"] and body["changed_total"] == 0
    rows = _rows(replayed.id)
    with Session(get_engine()) as session:
        calibration = thresholds.calibration_of(thresholds.in_force(session))
    decided = [decide_scored(scored_turn(r), calibration) for r in rows]
    assert body["in_force"] == {d: decided.count(d) for d in (ANSWER, CLARIFY, FALLBACK)}

    # Nothing reaches a fallback threshold of 9: every question not word for word a staff
    # question falls back; those that did not already are the changed ones, oldest first.
    strict = {"without_ranking": {"fallback": 9.0, "answer": 9.5, "margin": 0.0},
              "with_ranking": {"fallback": 9.0, "answer": 9.5, "margin": 0.0},
              "changed_limit": 3}
    body = client.post("/api/v1/simulator/outcomes", json=strict,
                       headers=auth["admin"]).json()
    exact = sum(bool(r.exact) for r in rows)
    assert body["simulated"] == {"answer": exact, "clarify": 0, "fallback": REPLAYABLE - exact}
    moved = [(r, d) for r, d in zip(rows, decided, strict=True) if d != FALLBACK and not r.exact]
    assert body["changed_total"] == len(moved) and len(body["changed"]) == min(3, len(moved))
    for shown, (row, before) in zip(body["changed"], moved, strict=False):
        assert (shown["turn_key"], shown["before"], shown["after"]) == \
            (row.turn_key, before, FALLBACK)

    # A margin wider than any gap asks about every answered question that has a runner-up.
    ask = {"without_ranking": {**same["without_ranking"], "margin": 9.0},
           "with_ranking": {**same["with_ranking"], "margin": 9.0}}
    body = client.post("/api/v1/simulator/outcomes", json=ask, headers=auth["admin"]).json()
    assert body["simulated"]["answer"] == exact


def test_the_simulator_is_for_admins_and_bad_questions_get_a_clear_refusal(
        client: TestClient, auth: dict, replayed: Job) -> None:
    ask = {"without_ranking": {"fallback": 0.5, "answer": 0.6, "margin": 0.0},
           "with_ranking": {"fallback": 0.5, "answer": 0.6, "margin": 0.0}}
    assert client.post("/api/v1/simulator/outcomes", json=ask,
                       headers=auth["staff"]).status_code == 403
    today = utcnow().date().isoformat()
    assert client.post("/api/v1/simulator/replays", json={"first": today, "last": today},
                       headers=auth["staff"]).status_code == 403
    for body, words in (({"first": today, "last": "1999-01-01"}, "last must not be before"),
                        ({"first": "2026-13-01", "last": today}, "first"),
                        ({"first": today}, "last")):
        reply = client.post("/api/v1/simulator/replays", json=body, headers=auth["admin"])
        assert reply.status_code == 422 and words in reply.text, reply.text
    reply = client.post("/api/v1/simulator/outcomes", json={**ask, "replay_job_id": 424242},
                        headers=auth["admin"])
    assert reply.status_code == 404 and "not a replay" in reply.text
    reply = client.post("/api/v1/simulator/outcomes",
                        json={**ask, "with_ranking": {"fallback": 0.5, "answer": 0.6}},
                        headers=auth["admin"])
    assert reply.status_code == 422 and "margin" in reply.text
    assert client.get("/api/v1/simulator/replays/latest",
                      headers=auth["admin"]).json()["id"] == replayed.id


def test_without_a_replay_the_page_and_the_api_say_to_start_one(client: TestClient,
                                                                auth: dict) -> None:
    ask = {"without_ranking": {"fallback": 0.5, "answer": 0.6, "margin": 0.0},
           "with_ranking": {"fallback": 0.5, "answer": 0.6, "margin": 0.0}}
    reply = client.post("/api/v1/simulator/outcomes", json=ask, headers=auth["admin"])
    assert reply.status_code == 404 and "start one first" in reply.text
    admin, _ = signed_in(client, auth["admin"])
    page = admin.get("/console/simulator")
    assert page.status_code == 200 and 'id="no-replay"' in page.text
    assert 'id="simulator-data"' not in page.text


def test_the_page_carries_the_cached_scores_and_lists_changed_questions_with_their_words(
        client: TestClient, auth: dict, replayed: Job) -> None:
    import html
    import json
    import re

    admin, csrf = signed_in(client, auth["admin"])
    page = admin.get("/console/simulator").text
    data = json.loads(re.search(r'id="simulator-data">(.*?)</script>', page, re.S).group(1))
    rows = _rows(replayed.id)
    assert data["top1"] == [r.top1 for r in rows] and data["top2"] == [r.top2 for r in rows]
    assert data["ranked"] == [1] * REPLAYABLE
    assert f'<strong data-figure="turns">{REPLAYABLE}</strong>' in page
    form = {f"{g}.{n}": "9" if n != "margin" else "0" for g in ("without_ranking",
                                                               "with_ranking")
            for n in ("fallback", "answer", "margin")}
    changes = admin.post("/console/simulator/outcomes", data=form,
                         headers={"X-CSRF-Token": csrf})
    assert changes.status_code == 200, changes.text
    shown = re.findall(r'data-turn="s-(\d+)"', changes.text)
    assert shown and "fell back" in changes.text
    for index in shown:  # each changed question with its own words, escaped
        assert html.escape(LOGGED[int(index)][0]) in changes.text
    form["with_ranking.margin"] = "-1"
    refused = admin.post("/console/simulator/outcomes", data=form,
                         headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 422 and "margin" in refused.text
    staff, _ = signed_in(client, auth["staff"])
    assert staff.get("/console/simulator").status_code == 403


def test_an_erased_conversation_leaves_the_replay(client: TestClient, auth: dict,
                                                 replayed: Job) -> None:
    reply = client.delete("/api/v1/conversations/sim-0", headers=auth["admin"])
    assert reply.status_code == 200, reply.text
    assert reply.json()["replayed_turns"] == 1
    assert all(r.session_id != "sim-0" for r in _rows(replayed.id))
    assert len(_rows(replayed.id)) == REPLAYABLE - 1


def test_a_new_replay_replaces_the_old_and_a_stopped_one_leaves_nothing(
        client: TestClient, auth: dict, replayed: Job, tracker_url: str) -> None:
    today = utcnow().date().isoformat()
    client.post("/api/v1/simulator/replays", json={"first": today, "last": today},
                headers=auth["admin"])
    second = _run_queued_replay()
    with Session(get_engine()) as session:
        kept = {r.job_id for r in session.exec(select(ReplayTurn))}
    assert kept == {second.id}
    # A cancelled replay (the stop is already asked) writes nothing and keeps the last one.
    progress = pipeline.Progress(log=lambda _: None)
    progress.stop.set()
    with pytest.raises(pipeline.Cancelled):
        simulator.replay(second.id + 1, {"first": today, "last": today}, progress,
                         get_settings())
    assert len(_rows(second.id)) == REPLAYABLE
    assert TrackerStore(tracker_url).exists()
