"""Customers' thumbs-up become training examples (confirmed intents), staff review them in
bulk, and the retraining snapshot trains on them without ever judging on them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api.models import AuditEntry
from common.config import get_settings
from common.db import get_engine
from tests.tracker_seed import Say, banking_conversations, seed

ANSWER = {"data": {"custom": {"data": {"answer_id": 101, "decision": "answer"}}}, "text": "ok"}


@pytest.fixture
def conversations(client: TestClient, tracker_url: str, auth: dict) -> dict:
    conversations, ages = banking_conversations()
    # Another customer with the same words, and one whose words staff label differently.
    conversations["c-same"] = [Say("When will my card arrive?", "card_arrival", 0.7, "m1",
                                   "u-7", actions=["action_answer"], bot=[ANSWER])]
    conversations["c-other"] = [Say("card still not here", "card_arrival", 0.6, "m1", "u-8",
                                    actions=["action_answer"], bot=[ANSWER])]
    conversations["c-new"] = [Say("is my new card on its way yet", "card_arrival", 0.8, "m1",
                                  "u-9", actions=["action_answer"], bot=[ANSWER])]
    ages.update({"c-same": 1200, "c-other": 600, "c-new": 300})
    seed(tracker_url, conversations, ages)
    return auth


def rate(client: TestClient, session_id: str, message_id: str, rating: str) -> None:
    reply = client.post("/api/v1/feedback", json={"session_id": session_id,
                                                  "message_id": message_id, "rating": rating})
    assert reply.status_code in (200, 201), reply.text


def confirmed(client: TestClient, staff: dict, **params: str) -> list[dict]:
    reply = client.get("/api/v1/training-examples", headers=staff,
                       params={"source": "confirmed", "limit": 100, **params})
    assert reply.status_code == 200, reply.text
    return reply.json()["items"]


def test_a_thumbs_up_confirms_what_the_bot_understood(client: TestClient,
                                                      conversations: dict) -> None:
    staff = conversations["staff"]
    rate(client, "c-answer", "u-1", "up")  # answered: card_arrival
    rate(client, "c-answer", "u-2", "up")  # a template reply: thank_you
    rate(client, "c-fallback", "u-3", "up")  # the bot fell back: nothing was understood
    rate(client, "c-clarify", "u-4", "up")  # the bot asked which one: not a confirmation
    rate(client, "c-same", "u-7", "up")  # the same words again: one example
    rows = {(r["text"], r["intent"]): r for r in confirmed(client, staff)}
    assert set(rows) == {("When will my card arrive?", "card_arrival"), ("thanks", "thank_you")}
    first = rows[("When will my card arrive?", "card_arrival")]
    assert (first["status"], first["source"], first["created_by"]) == (
        "pending", "confirmed", "customer")
    assert first["feedback_id"] is not None
    # Pending examples are not training data yet.
    assert "card_arrival" not in client.get("/api/v1/training-examples/export",
                                            headers=staff).text


def test_turning_the_thumb_down_withdraws_and_up_again_restores(client: TestClient,
                                                                conversations: dict) -> None:
    staff = conversations["staff"]
    rate(client, "c-answer", "u-1", "up")
    [example] = confirmed(client, staff)
    rate(client, "c-answer", "u-1", "down")
    [withdrawn] = confirmed(client, staff)
    assert (withdrawn["id"], withdrawn["status"], withdrawn["approved_by"]) == (
        example["id"], "rejected", "customer")
    rate(client, "c-answer", "u-1", "up")
    assert [(e["id"], e["status"]) for e in confirmed(client, staff)] == [
        (example["id"], "pending")]
    # A member of staff's rejection stands, whatever the customer clicks next.
    assert client.post(f"/api/v1/training-examples/{example['id']}/reject",
                       headers=staff).status_code == 200
    rate(client, "c-answer", "u-1", "down")
    rate(client, "c-answer", "u-1", "up")
    [after] = confirmed(client, staff)
    assert (after["status"], after["approved_by"]) == ("rejected", "sam")
    with Session(get_engine()) as session:
        actions = [a.action for a in session.exec(select(AuditEntry).where(
            AuditEntry.entity == "training_example",
            AuditEntry.entity_id == str(example["id"]))).all()]
    assert actions == ["training_example.withdrawn", "training_example.rejected"]


@pytest.mark.parametrize(("mode", "expected"), [("auto", ["approved"]), ("off", [])])
def test_the_setting_approves_at_once_or_turns_it_off(
        client: TestClient, conversations: dict, monkeypatch: pytest.MonkeyPatch, mode: str,
        expected: list[str]) -> None:
    monkeypatch.setenv("HELPDESK_CONFIRMED_EXAMPLES", mode)
    get_settings.cache_clear()
    rate(client, "c-answer", "u-1", "up")
    rows = confirmed(client, conversations["staff"])
    assert [r["status"] for r in rows] == expected
    export = client.get("/api/v1/training-examples/export",
                        headers=conversations["staff"]).text
    assert ("When will my card arrive?" in export) == (mode == "auto")


def test_staff_review_many_at_once(client: TestClient, conversations: dict) -> None:
    staff = conversations["staff"]
    for session_id, message_id in (("c-answer", "u-1"), ("c-answer", "u-2"),
                                   ("c-other", "u-8")):
        rate(client, session_id, message_id, "up")
    ids = sorted(r["id"] for r in confirmed(client, staff))
    assert len(ids) == 3
    reply = client.post("/api/v1/training-examples/review", headers=staff,
                        json={"ids": [ids[0], ids[1], ids[1], 999999], "status": "approved"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"changed": ids[:2],
                            "skipped": {"999999": "no such training example"}}
    again = client.post("/api/v1/training-examples/review", headers=staff,
                        json={"ids": ids, "status": "rejected"}).json()
    assert again == {"changed": [ids[2]], "skipped": {str(ids[0]): "already approved",
                                                      str(ids[1]): "already approved"}}
    statuses = {r["id"]: (r["status"], r["approved_by"]) for r in confirmed(client, staff)}
    assert statuses == {ids[0]: ("approved", "sam"), ids[1]: ("approved", "sam"),
                        ids[2]: ("rejected", "sam")}

    assert client.post("/api/v1/training-examples/review",
                       json={"ids": ids, "status": "approved"}).status_code == 401
    for bad in ({"ids": [], "status": "approved"}, {"ids": list(range(1, 502)),
                                                     "status": "approved"},
                {"ids": ["1"], "status": "approved"}, {"ids": [True], "status": "approved"},
                {"ids": [0], "status": "approved"}, {"ids": [2**40], "status": "approved"},
                {"ids": [1], "status": "pending"}, {"ids": [1], "status": "maybe"},
                {"ids": [1], "status": "approved", "extra": 1}, {"ids": 1, "status": "approved"},
                {"status": "approved"}):
        reply = client.post("/api/v1/training-examples/review", headers=staff, json=bad)
        assert reply.status_code == 422, (bad, reply.text)
        assert reply.json()["detail"]
    malformed = client.post("/api/v1/training-examples/review", headers=staff,
                            content=b"{not json")
    assert malformed.status_code == 422


def test_the_snapshot_trains_on_confirmations_but_never_judges_on_them(
        client: TestClient, conversations: dict) -> None:
    from common.config import get_settings
    from learning.pipeline import take_snapshot

    staff = conversations["staff"]
    rate(client, "c-new", "u-9", "up")  # words that are not in BANKING77's test.csv
    rate(client, "c-other", "u-8", "up")
    # Staff say "card still not here" is a lost card: their label wins over the confirmation.
    staff_label = client.post("/api/v1/training-examples", headers=staff,
                              json={"text": "Card still not here", "intent": "lost_or_stolen_card"})
    by_text = {r["text"]: r["id"] for r in confirmed(client, staff)}
    ids = sorted(by_text.values()) + [staff_label.json()["id"]]
    assert client.post("/api/v1/training-examples/review", headers=staff,
                       json={"ids": ids, "status": "approved"}).json()["changed"] == ids
    # At a share of 1.0 every staff-labelled example is held out.
    settings = get_settings().copy(update={"heldout_share": 1.0})
    with Session(get_engine()) as session:
        snap = take_snapshot(session, settings, limit_per_intent=2)
    assert snap.approved == {"card_arrival": ["is my new card on its way yet"]}
    heldout_texts = {t for t, _ in snap.heldout}
    assert "is my new card on its way yet" not in heldout_texts  # confirmed: trained, not judged
    assert "Card still not here" in heldout_texts  # staff's example: held out at share 1.0
    assert snap.regression == []  # confirmations are not corrected mistakes
    assert [s for s in snap.skipped if "conflicting label" in s] == [
        f"{by_text['card still not here']}:card_arrival (conflicting label)"]
