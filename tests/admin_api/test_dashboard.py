"""The dashboard's figures over a real tracker store (SQLite and PostgreSQL): the pre-aggregated
turn facts agree with a direct recomputation from the tracker's turns, stay right as
conversations go on and are erased, the broker's event-by-event folding makes the same rows,
a day outside its trailing band is flagged, and the console's page and CSV downloads show
what the API says."""

from __future__ import annotations

import csv
import io
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api import metrics, turn_facts
from admin_api.models import TurnFact, utcnow
from admin_api.tracker import TrackerStore, Turn
from common.config import get_settings
from common.db import get_engine
from tests.admin_api.test_console import signed_in
from tests.conftest import RABBITMQ_URL, delete_queue, rabbitmq_reachable
from tests.tracker_seed import DAY, Say, seed

OUTCOMES = ("answer", "clarify", "fallback", "handoff")


def say(outcome: str, message_id: str, model: str = "m1", confidence: float = 0.9,
        intent: str = "card_arrival") -> Say:
    """A customer turn the bot handled with ``outcome`` (as our actions log it)."""
    if outcome == "answer":
        return Say("When will my card arrive?", intent, confidence, model, message_id,
                   actions=["action_answer"],
                   bot=[{"text": "Soon.", "data": {"custom": {"answer_id": 101,
                                                              "decision": "answer"}}}])
    if outcome == "clarify":
        return Say("card problem", intent, confidence, model, message_id,
                   actions=["action_answer"],
                   bot=[{"text": "Pick one:", "data": {"custom": {"decision": "clarify",
                                                                  "answer_ids": [101, 105]}}}])
    if outcome == "fallback":
        return Say("blorp zing", "nlu_fallback", confidence, model, message_id,
                   actions=["utter_no_answer"],
                   bot=[{"text": "Sorry.", "metadata": {"utter_action": "utter_no_answer"}}])
    return Say("a human please", "request_human", confidence, model, message_id,
               actions=["utter_handoff"], pause=True,
               bot=[{"text": "Passing you on.", "metadata": {"utter_action": "utter_handoff"}}])


def random_traffic(seed_value: int, conversations: int = 60,
                   days: int = 20) -> tuple[dict[str, list[Say]], dict[str, float]]:
    rng = random.Random(seed_value)
    found: dict[str, list[Say]] = {}
    ages: dict[str, float] = {}
    for c in range(conversations):
        turns = []
        for t in range(rng.randint(1, 4)):
            outcome = rng.choice(OUTCOMES)
            turns.append(say(outcome, f"r{c}-{t}", model=rng.choice(["m1", "m2"]),
                             confidence=round(rng.random(), 3),
                             intent=rng.choice(["card_arrival", "exchange_rate"])))
            if outcome == "handoff":
                break
        found[f"r-{c}"] = turns
        ages[f"r-{c}"] = rng.randint(0, days - 1) * DAY + rng.randint(60, 80000)
    return found, ages


def direct(turns: list[Turn]) -> dict:
    """The figures recomputed straight from the tracker's turns, in plain Python."""
    outcomes = Counter(t.outcome for t in turns)
    sessions = {t.session_id for t in turns}
    handed = {t.session_id for t in turns if t.outcome == "handoff"}
    histogram = Counter(min(9, int(t.confidence * 10)) for t in turns
                        if t.confidence is not None)
    latencies = sorted(round((t.replied_at - t.timestamp) * 1000) for t in turns
                       if t.replied_at is not None)
    return {"messages": len(turns), "conversations": len(sessions),
            "answer_rate": round(outcomes["answer"] / len(turns), 4),
            "fallback_rate": round(outcomes["fallback"] / len(turns), 4),
            "clarification_rate": round(outcomes["clarify"] / len(turns), 4),
            "handoff_rate": round(len(handed) / len(sessions), 4),
            "histogram": [histogram.get(b, 0) for b in range(10)],
            "p50": latencies[max(0, -(-len(latencies) // 2) - 1)]}


def _facts(session: Session) -> list[tuple]:
    return sorted((f.session_id, f.turn_key, f.outcome, f.answer_id, f.latency_ms, f.intent,
                   f.confidence, f.model_id) for f in session.exec(select(TurnFact)).all())


def test_the_aggregated_figures_equal_a_direct_recomputation_from_the_tracker(
        client: TestClient, tracker_url: str) -> None:
    conversations, ages = random_traffic(7)
    seed(tracker_url, conversations, ages)
    store = TrackerStore(tracker_url)
    until = utcnow() + timedelta(minutes=1)
    since = until - timedelta(days=30)
    with Session(get_engine()) as session:
        got = metrics.summary_for(session, store, since, until)
    want = direct(store.turns(since=since, until=until))
    assert got["messages"] == want["messages"] > 60
    for key in ("conversations", "answer_rate", "fallback_rate", "clarification_rate",
                "handoff_rate"):
        assert got[key] == want[key], key
    assert [b["count"] for b in got["confidence_histogram"]] == want["histogram"]
    # Every turn of the seed is answered 0.2 s after the customer wrote.
    assert got["reply_latency_ms"] == {"p50": 200, "p95": 200} and want["p50"] == 200
    assert got["answer_rate"] + got["clarification_rate"] + got["fallback_rate"] <= 1
    models = {m["model_id"]: m for m in got["per_model"]}
    assert set(models) == {"m1", "m2"}
    assert sum(m["messages"] for m in models.values()) == got["messages"]


def test_a_conversation_that_goes_on_and_one_that_is_erased_keep_the_facts_exact(
        client: TestClient, tracker_url: str, auth: dict) -> None:
    seed(tracker_url, {"a": [say("answer", "a-1")], "b": [say("fallback", "b-1")]},
         {"a": 600, "b": 500})
    store = TrackerStore(tracker_url)
    assert client.get("/api/v1/metrics/summary", headers=auth["staff"]).json()["messages"] == 2
    # The same conversation goes on (Rasa saves the whole tracker again, with new events).
    seed(tracker_url, {"a": [say("answer", "a-1"), say("handoff", "a-2")]}, {"a": 600})
    summary = client.get("/api/v1/metrics/summary", headers=auth["staff"]).json()
    assert (summary["messages"], summary["handoff_rate"]) == (3, 0.5)
    with Session(get_engine()) as session:
        incremental = _facts(session)
        session.execute(TurnFact.__table__.delete())  # type: ignore[attr-defined]
        session.merge(turn_facts.Meta(key=turn_facts.CURSOR_KEY, value="0"))
        session.commit()
        turn_facts.catch_up(session, store)
        assert _facts(session) == incremental  # the same as built in one go
    assert client.delete("/api/v1/conversations/a", headers=auth["admin"]).status_code == 200
    summary = client.get("/api/v1/metrics/summary", headers=auth["staff"]).json()
    assert (summary["messages"], summary["conversations"]) == (1, 1)
    with Session(get_engine()) as session:
        assert {f[0] for f in _facts(session)} == {"b"}


def test_erasing_the_newest_conversation_does_not_hide_the_next_one_nor_refold_all(
        client: TestClient, tracker_url: str, auth: dict) -> None:
    seed(tracker_url, {"a": [say("answer", "a-1")], "b": [say("fallback", "b-1")]},
         {"a": 600, "b": 500})
    assert client.get("/api/v1/metrics/summary", headers=auth["staff"]).json()["messages"] == 2
    with Session(get_engine()) as session:
        [kept] = session.exec(select(TurnFact.id).where(TurnFact.session_id == "a")).all()
    # b holds the newest events: erased, SQLite hands their ids to the next conversation.
    assert client.delete("/api/v1/conversations/b", headers=auth["admin"]).status_code == 200
    assert client.get("/api/v1/metrics/summary", headers=auth["staff"]).json()["messages"] == 1
    seed(tracker_url, {"c": [say("handoff", "c-1")]}, {"c": 400})
    summary = client.get("/api/v1/metrics/summary", headers=auth["staff"]).json()
    assert (summary["messages"], summary["handoff_rate"]) == (2, 0.5)
    with Session(get_engine()) as session:
        facts = session.exec(select(TurnFact.session_id, TurnFact.id)).all()
    assert sorted(f[0] for f in facts) == ["a", "c"] and ("a", kept) in facts  # not refolded


def test_events_folded_one_by_one_as_the_broker_delivers_them_make_the_same_rows(
        client: TestClient, tracker_url: str) -> None:
    conversations, ages = random_traffic(11, conversations=25, days=3)
    seed(tracker_url, conversations, ages)
    store = TrackerStore(tracker_url)
    with Session(get_engine()) as session:
        turn_facts.catch_up(session, store)
        from_tracker = _facts(session)
        session.execute(TurnFact.__table__.delete())  # type: ignore[attr-defined]
        session.commit()
        for session_id in sorted(conversations):
            for event in store.events(session_id):
                body = {"sender_id": session_id, "event": event["type"], **event}
                turn_facts.apply_event(session, body)
                session.commit()
                if event["type"] == "user":  # a redelivered message counts once
                    assert not turn_facts.apply_event(session, body)
        assert _facts(session) == from_tracker


def test_a_day_outside_its_trailing_band_is_flagged_and_the_rest_are_not(
        client: TestClient, tracker_url: str, auth: dict) -> None:
    conversations, ages = {}, {}
    now = utcnow()
    for days_ago in range(1, 21):
        # Noon of each day, so every conversation of a day lands on that UTC day.
        noon = now.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(
            days=days_ago)
        for i in range(10):
            fallback = i < (8 if days_ago == 3 else 1)
            conversations[f"d{days_ago}-{i}"] = [
                say("fallback" if fallback else "answer", f"d{days_ago}-{i}")]
            ages[f"d{days_ago}-{i}"] = (now - noon).total_seconds() - i
    seed(tracker_url, conversations, ages)
    first, last = (now - timedelta(days=10)).date(), (now - timedelta(days=1)).date()
    reply = client.get("/api/v1/metrics/daily", headers=auth["staff"],
                       params={"first": str(first), "last": str(last)})
    assert reply.status_code == 200, reply.text
    days = {d["day"]: d for d in reply.json()}
    spike = str((now - timedelta(days=3)).date())
    assert days[spike]["fallback_rate"] == 0.8 and days[spike]["fallback_rate_drift"]
    assert [d for d, v in days.items() if v["fallback_rate_drift"]] == [spike]
    assert days[str((now - timedelta(days=2)).date())]["fallback_rate_band"][0] <= 0.1
    refused = client.get("/api/v1/metrics/daily", headers=auth["staff"],
                         params={"first": str(last), "last": str(first)})
    assert refused.status_code == 422 and "before" in refused.text
    for first_day, last_day in (("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31"),
                                ("2020-01-01", "2022-01-01")):
        far = client.get("/api/v1/metrics/daily", headers=auth["staff"],
                         params={"first": first_day, "last": last_day})
        assert far.status_code == 422 and "days" in far.json()["detail"], far.text
    early = client.get("/api/v1/metrics/summary", headers=auth["staff"],
                       params={"until": "0001-01-02T00:00:00+00:00"})
    assert early.status_code == 200 and early.json()["messages"] == 0

    staff, _ = signed_in(client, auth["staff"])
    page = staff.get("/console/dashboard", params={"from": str(first), "to": str(last)})
    assert page.status_code == 200
    assert 'id="drift-alert"' in page.text and spike in page.text.split('id="drift-alert"')[1]


def test_the_dashboard_page_and_its_downloads_show_what_the_api_says(
        client: TestClient, tracker_url: str, auth: dict) -> None:
    conversations, ages = random_traffic(3, conversations=40, days=6)
    conversations["x"] = [say("answer", "x-1", model="=cmd|' /C calc'!A0")]
    ages["x"] = 100
    seed(tracker_url, conversations, ages)
    staff, _ = signed_in(client, auth["staff"])
    page = staff.get("/console/dashboard", params={"range": "7d"})
    assert page.status_code == 200
    data = json.loads(page.text.split('id="dashboard-data">')[1].split("</script>")[0])
    today = utcnow().date()
    since = f"{today - timedelta(days=6)}T00:00:00"
    api = client.get("/api/v1/metrics/summary", headers=auth["staff"],
                     params={"since": since + "+00:00",
                             "until": f"{today + timedelta(days=1)}T00:00:00+00:00"}).json()
    for key in ("messages", "conversations", "answer_rate", "handoff_rate", "per_model",
                "confidence_histogram", "top_failing_intents", "reply_latency_ms"):
        assert data["summary"][key] == api[key], key
    assert f'data-figure="messages">{api["messages"]}<' in page.text
    assert f'{api["fallback_rate"] * 100:.1f} %' in page.text
    assert sum(d["messages"] for d in data["daily"]) == api["messages"]

    download = staff.get("/console/dashboard/daily.csv", params={"range": "7d"})
    assert download.status_code == 200 and download.headers["content-type"].startswith(
        "text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [r["day"] for r in rows] == [d["day"] for d in data["daily"]]
    assert sum(int(r["messages"]) for r in rows) == api["messages"]
    models = list(csv.DictReader(io.StringIO(
        staff.get("/console/dashboard/models.csv", params={"range": "7d"}).text)))
    # A cell that a spreadsheet would run as a formula is quoted.
    assert "'=cmd|' /C calc'!A0" in {m["model_id"] for m in models}
    assert staff.get("/console/dashboard/nope.csv").status_code == 404
    bad = staff.get("/console/dashboard", params={"range": "1y"})
    assert bad.status_code == 422 and "range" in bad.text


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    reply = client.get("/console/dashboard", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"].endswith("/console/sign-in")


@pytest.fixture
def broker_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The admin API consumes Rasa's event broker (RabbitMQ) on a queue of its own."""
    if not rabbitmq_reachable():
        pytest.skip(f"RabbitMQ is not running at {RABBITMQ_URL}: the event broker's tests "
                    "need it (the machines start it before work and CI)")
    queue = f"helpdesk-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("HELPDESK_EVENT_BROKER_URL", RABBITMQ_URL)
    monkeypatch.setenv("HELPDESK_EVENT_QUEUE", queue)
    yield queue
    delete_queue(queue)


def test_with_the_event_broker_the_figures_come_from_rasas_stream(
        broker_queue: str, client: TestClient, tracker_url: str, auth: dict) -> None:
    conversations, ages = random_traffic(5, conversations=30, days=3)
    seed(tracker_url, conversations, ages, broker_url=RABBITMQ_URL, queue=broker_queue)
    store = TrackerStore(tracker_url)
    want = direct(store.turns())
    deadline = time.monotonic() + 60
    while True:
        got = client.get("/api/v1/metrics/summary", headers=auth["staff"]).json()
        if got["messages"] == want["messages"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    for key in ("messages", "conversations", "answer_rate", "fallback_rate",
                "clarification_rate", "handoff_rate"):
        assert got[key] == want[key], key
    with Session(get_engine()) as session:
        streamed = _facts(session)
        # Built from the tracker store instead, the rows are the same.
        session.execute(TurnFact.__table__.delete())  # type: ignore[attr-defined]
        session.commit()
        turn_facts.catch_up(session, store)
        assert _facts(session) == streamed


def test_a_large_backlog_is_folded_in_the_background_and_the_page_says_how_far(
        client: TestClient, tracker_url: str, auth: dict,
        monkeypatch: pytest.MonkeyPatch) -> None:
    conversations, ages = random_traffic(9, conversations=20, days=2)
    seed(tracker_url, conversations, ages)
    # As on a first start with a background thread: a page does not wait for a large fold.
    monkeypatch.setenv("HELPDESK_METRICS_SYNC_SECONDS", "3600")
    monkeypatch.setattr(turn_facts, "REQUEST_CATCH_UP_MAX", 10)
    get_settings.cache_clear()
    staff, _ = signed_in(client, auth["staff"])
    page = staff.get("/console/dashboard")
    assert page.status_code == 200 and 'id="backlog"' in page.text and "0 % done" in page.text
    summary = client.get("/api/v1/metrics/summary", headers=auth["staff"]).json()
    assert summary["messages"] == 0 and summary["backlog"]["folded_event_id"] == 0
    with Session(get_engine()) as session:  # what the background thread does
        turn_facts.catch_up(session, TrackerStore(tracker_url))
    summary = client.get("/api/v1/metrics/summary", headers=auth["staff"]).json()
    assert summary["backlog"] is None and summary["messages"] > 20
    assert 'id="backlog"' not in staff.get("/console/dashboard").text
