"""Conversations, the review inbox, metrics and the hand-off queue over a tracker store that
Rasa's own SQLTrackerStore wrote (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.tracker_seed import Say, banking_conversations, seed


@pytest.fixture
def seeded(client: TestClient, tracker_url: str, auth: dict) -> dict:
    conversations, ages = banking_conversations()
    seed(tracker_url, conversations, ages)
    down = client.post("/api/v1/feedback", json={
        "session_id": "c-answer", "message_id": "u-1", "answer_id": 101, "rating": "down",
        "comment": "that's not what I asked"})
    up = client.post("/api/v1/feedback", json={
        "session_id": "c-answer", "message_id": "u-2", "rating": "up"})
    assert down.status_code == up.status_code == 201
    return auth


def test_metrics_summary_has_exact_counts_and_rates(client: TestClient, seeded: dict) -> None:
    reply = client.get("/api/v1/metrics/summary", headers=seeded["staff"])
    assert reply.status_code == 200, reply.text
    m = reply.json()
    # c-old is 10 days old: outside the default 7-day window.
    assert (m["messages"], m["conversations"]) == (5, 4)
    assert (m["answer_rate"], m["fallback_rate"], m["clarification_rate"]) == (0.2, 0.2, 0.2)
    assert m["handoff_rate"] == 0.25
    assert m["feedback"] == {"up": 1, "down": 1, "up_ratio": 0.5}
    assert m["top_intents"][0] == {"intent": "card_arrival", "count": 2}
    assert {i["intent"]: i["count"] for i in m["top_intents"]} == {
        "card_arrival": 2, "thank_you": 1, "nlu_fallback": 1, "request_human": 1}
    failing = {i["intent"]: (i["failures"], i["failure_rate"]) for i in m["top_failing_intents"]}
    # card_arrival: one clarification and one thumbs-down (its intent read from the tracker).
    assert failing == {"card_arrival": (2, 1.0), "nlu_fallback": (1, 1.0),
                       "request_human": (1, 1.0)}
    assert [b["count"] for b in m["confidence_histogram"]] == [0, 0, 1, 0, 1, 0, 0, 0, 1, 2]
    assert m["answer_usage"] == [{"answer_id": 101, "answered": 1, "up": 0, "down": 1}]
    per_model = {p["model_id"]: p for p in m["per_model"]}
    assert per_model["m1"]["messages"] == 3 and per_model["m1"]["fallback_rate"] == 0.3333
    assert per_model["m2"]["messages"] == 2 and per_model["m2"]["clarification_rate"] == 0.5
    # A window that reaches back 11 days includes the old greeting.
    wide = client.get("/api/v1/metrics/summary", headers=seeded["staff"],
                      params={"since": "2000-01-01T00:00:00+00:00"}).json()
    assert (wide["messages"], wide["conversations"]) == (6, 5)


def test_prometheus_exposes_conversation_figures(client: TestClient, seeded: dict) -> None:
    text = client.get("/metrics").text
    assert "helpdesk_messages_24h 5.0" in text
    assert "helpdesk_fallback_rate_24h 0.2" in text
    assert 'helpdesk_feedback_24h{rating="down"} 1.0' in text
    assert 'helpdesk_api_requests_total{method="POST",route="/api/v1/feedback",status="201"}' \
        in text


def test_conversations_list_search_and_transcript(client: TestClient, seeded: dict) -> None:
    staff = seeded["staff"]
    page = client.get("/api/v1/conversations", headers=staff).json()
    assert page["total"] == 5
    assert [c["session_id"] for c in page["items"]][:2] == ["c-handoff", "c-clarify"]
    assert {c["session_id"]: c["paused"] for c in page["items"]}["c-handoff"] is True
    found = client.get("/api/v1/conversations", headers=staff, params={"q": "card"}).json()
    assert {c["session_id"] for c in found["items"]} == {"c-answer", "c-clarify"}
    unicode = client.get("/api/v1/conversations", headers=staff, params={"q": "Ünïcödé"}).json()
    assert [c["session_id"] for c in unicode["items"]] == ["c-handoff"]
    wildcard = client.get("/api/v1/conversations", headers=staff, params={"q": "%"}).json()
    assert wildcard["total"] == 0  # LIKE wildcards are searched literally
    paused = client.get("/api/v1/conversations", headers=staff, params={"paused": True}).json()
    assert [c["session_id"] for c in paused["items"]] == ["c-handoff"]

    transcript = client.get("/api/v1/conversations/c-answer", headers=staff).json()
    kinds = [(e["kind"], e.get("intent"), e.get("answer_id")) for e in transcript["entries"]]
    assert kinds == [("customer", "card_arrival", None), ("bot", None, 101),
                     ("customer", "thank_you", None), ("bot", None, None)]
    first = transcript["entries"][0]
    assert first["confidence"] == 0.92 and first["model_id"] == "m1"
    assert first["message_id"] == "u-1"
    assert client.get("/api/v1/conversations/nope", headers=staff).status_code == 404


FILTER_CASES = [
    ({"intent": "card_arrival"}, {"c-answer", "c-clarify"}),
    ({"confidence_below": 0.5}, {"c-fallback", "c-clarify"}),
    ({"confidence_below": 0.5, "intent": "card_arrival"}, {"c-clarify"}),
    ({"model_id": "m2"}, {"c-clarify", "c-handoff"}),
    ({"model_id": "m"}, set()),  # a whole model id, not a prefix
    ({"rating": "down"}, {"c-answer"}),
    ({"handed_off": True}, {"c-handoff"}),
    ({"handed_off": False}, {"c-answer", "c-fallback", "c-clarify", "c-old"}),
    ({"handed_off": True, "intent": "greet"}, set()),
]


def test_conversations_filter_by_intent_confidence_model_rating_and_hand_off(
        client: TestClient, seeded: dict) -> None:
    for params, expected in FILTER_CASES:
        page = client.get("/api/v1/conversations", headers=seeded["staff"],
                          params=params).json()
        found = {c["session_id"] for c in page["items"]}
        assert found == expected and page["total"] == len(expected), params
        # The console's list reads the same filters from its form and shows the same ones.
        form = {k: {True: "yes", False: "no"}.get(v, v) if isinstance(v, bool) else v
                for k, v in params.items()}
        html = client.get("/console/conversations", headers=seeded["staff"], params=form).text
        assert set(re.findall(r'href="/console/conversations/([\w-]+)"', html)) == expected, \
            params


def test_a_bad_conversation_filter_is_a_422_naming_the_field(client: TestClient,
                                                              seeded: dict) -> None:
    for params, field in [({"confidence_below": 2}, "confidence_below"),
                          ({"intent": "not an intent"}, "intent"), ({"rating": "meh"}, "rating")]:
        api = client.get("/api/v1/conversations", headers=seeded["staff"], params=params)
        assert api.status_code == 422 and field in api.text
        page = client.get("/console/conversations", headers=seeded["staff"], params=params)
        assert page.status_code == 422 and field in page.text


def test_inbox_lists_fallbacks_clarifications_low_confidence_and_thumbs_down(
    client: TestClient, seeded: dict, tracker_url: str
) -> None:
    items = client.get("/api/v1/inbox", headers=seeded["staff"]).json()["items"]
    by_message = {i["message_id"]: i for i in items}
    assert set(by_message) == {"u-1", "u-3", "u-4"}
    assert by_message["u-3"]["reasons"] == ["fallback", "low_confidence"]
    assert by_message["u-4"]["reasons"] == ["clarify", "low_confidence"]
    assert by_message["u-1"]["reasons"] == ["thumbs_down"]
    assert by_message["u-1"]["text"] == "When will my card arrive?"
    assert by_message["u-1"]["answer_id"] == 101
    only = client.get("/api/v1/inbox", headers=seeded["staff"],
                      params={"reason": "clarify"}).json()["items"]
    assert [i["message_id"] for i in only] == ["u-4"]
    # Listing again finds nothing new to add; a turn saved later is picked up incrementally.
    again = client.get("/api/v1/inbox", headers=seeded["staff"]).json()
    assert again["total"] == 3
    later = {"c-later": [Say("zzz qqq", "nlu_fallback", 0.1, "m2", "u-9",
                             bot=[{"text": "Sorry.",
                                   "metadata": {"utter_action": "utter_no_answer"}}])]}
    seed(tracker_url, later, {"c-later": 60})
    latest = client.get("/api/v1/inbox", headers=seeded["staff"]).json()
    assert latest["total"] == 4 and latest["items"][0]["message_id"] == "u-9"


def test_feedback_takes_text_and_intent_from_the_tracker(client: TestClient,
                                                         seeded: dict) -> None:
    rows = client.get("/api/v1/feedback", headers=seeded["staff"],
                      params={"rating": "down"}).json()["items"]
    [row] = rows
    assert (row["text"], row["intent"], row["confidence"]) == (
        "When will my card arrive?", "card_arrival", 0.92)


def test_triage_assign_intent_link_answer_ignore(client: TestClient, seeded: dict) -> None:
    staff = seeded["staff"]
    items = {i["message_id"]: i["id"]
             for i in client.get("/api/v1/inbox", headers=staff).json()["items"]}
    example = client.post(f"/api/v1/inbox/{items['u-3']}/assign-intent", headers=staff,
                          json={"intent": "card_arrival"})
    assert example.status_code == 201, example.text
    assert example.json()["text"] == "blorp zing" and example.json()["status"] == "pending"
    again = client.post(f"/api/v1/inbox/{items['u-3']}/assign-intent", headers=staff,
                        json={"intent": "card_arrival"})
    assert again.status_code == 409

    linked = client.post(f"/api/v1/inbox/{items['u-4']}/link-answer", headers=staff,
                         json={"answer_id": 105})
    assert linked.status_code == 200, linked.text
    assert "problem with my card" in linked.json()["questions"]
    revisions = client.get("/api/v1/answers/105/revisions", headers=staff).json()["items"]
    assert revisions[0]["action"] == "link" and revisions[0]["author"] == "sam"

    ignored = client.post(f"/api/v1/inbox/{items['u-1']}/ignore", headers=staff)
    assert ignored.json()["status"] == "ignored" and ignored.json()["handled_by"] == "sam"
    feedback = client.get("/api/v1/feedback", headers=staff, params={"rating": "down"}).json()
    assert feedback["items"][0]["status"] == "ignored"
    assert client.get("/api/v1/inbox", headers=staff).json()["total"] == 0
    assert client.get("/api/v1/inbox", headers=staff,
                      params={"status": "used"}).json()["total"] == 2
    assert client.post("/api/v1/inbox/999999/ignore", headers=staff).status_code == 404

    # The pending example is approved, then exported in Rasa's format.
    example_id = example.json()["id"]
    assert client.post(f"/api/v1/training-examples/{example_id}/approve",
                       headers=staff).json()["approved_by"] == "sam"
    export = client.get("/api/v1/training-examples/export", headers=staff)
    assert export.status_code == 200
    import yaml

    nlu = yaml.safe_load(export.text)
    assert nlu["version"] == "3.1"
    assert nlu["nlu"] == [{"intent": "card_arrival", "examples": "- blorp zing\n"}]


def test_training_examples_add_reject_and_refuse_duplicates(client: TestClient,
                                                            auth: dict) -> None:
    staff = auth["staff"]
    body = {"text": "  my [card](x) is   {stuck} ", "intent": "card_arrival"}
    added = client.post("/api/v1/training-examples", headers=staff, json=body)
    assert added.status_code == 201 and added.json()["text"] == "my [card](x) is {stuck}"
    assert client.post("/api/v1/training-examples", headers=staff, json=body).status_code == 409
    for bad in ({"text": "", "intent": "x"}, {"text": "hi", "intent": "Not An Intent"},
                {"text": "hi"}, {"text": "x" * 501, "intent": "a"}):
        assert client.post("/api/v1/training-examples", headers=staff,
                           json=bad).status_code == 422
    example_id = added.json()["id"]
    assert client.post(f"/api/v1/training-examples/{example_id}/approve",
                       headers=staff).status_code == 200
    assert client.post(f"/api/v1/training-examples/{example_id}/reject",
                       headers=staff).status_code == 409
    export = client.get("/api/v1/training-examples/export", headers=staff).text
    assert "- my  card  x  is  stuck" in export  # annotations cannot sneak into Rasa's data
    listed = client.get("/api/v1/training-examples", headers=staff,
                        params={"status": "approved"}).json()
    assert listed["total"] == 1 and listed["items"][0]["source"] == "staff"


def test_handoff_queue_lists_paused_conversations(client: TestClient, seeded: dict) -> None:
    queue = client.get("/api/v1/handoff", headers=seeded["staff"]).json()
    assert [(w["session_id"], w["intent"]) for w in queue] == [("c-handoff", "request_human")]
    assert queue[0]["last_message"] == "Ünïcödé: I want a human <b>now</b>"
    not_paused = client.post("/api/v1/handoff/c-answer/reply", headers=seeded["staff"],
                             json={"text": "hello"})
    assert not_paused.status_code == 404


def test_erase_and_retention(client: TestClient, seeded: dict) -> None:
    admin, staff = seeded["admin"], seeded["staff"]
    assert client.delete("/api/v1/conversations/c-answer", headers=staff).status_code == 403
    erased = client.delete("/api/v1/conversations/c-answer", headers=admin)
    assert erased.status_code == 200
    assert erased.json()["feedback"] == 2 and erased.json()["events"] > 0
    assert client.get("/api/v1/conversations/c-answer", headers=staff).status_code == 404
    assert client.get("/api/v1/feedback", headers=staff).json()["total"] == 0
    assert client.delete("/api/v1/conversations/c-answer", headers=admin).status_code == 404

    assert client.get("/api/v1/conversations/retention", headers=staff).json() == {"days": None}
    assert client.put("/api/v1/conversations/retention", headers=admin,
                      json={"days": 0}).status_code == 422
    assert client.put("/api/v1/conversations/retention", headers=admin,
                      json={"days": 7}).json() == {"days": 7}
    assert client.post("/api/v1/conversations/purge", headers=admin).json() == {"erased": 1}
    left = {c["session_id"] for c in
            client.get("/api/v1/conversations", headers=staff).json()["items"]}
    assert left == {"c-fallback", "c-clarify", "c-handoff"}
    actions = [e["action"] for e in
               client.get("/api/v1/audit", headers=admin).json()["items"]]
    assert actions[:3] == ["conversation.purge", "conversation.retention",
                           "conversation.erase"]


def test_erasing_a_conversation_erases_what_was_derived_from_its_words(
        client: TestClient, seeded: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from sqlmodel import Session

    from admin_api.models import ModelVersion
    from common.config import get_settings
    from common.db import get_engine
    from learning import jobs

    monkeypatch.setenv("HELPDESK_VAR_DIR", str(tmp_path / "var"))  # where jobs keep their data
    get_settings.cache_clear()
    admin, staff = seeded["admin"], seeded["staff"]
    words = "problem with my card"  # c-clarify's customer turn (u-4)
    items = {i["message_id"]: i["id"]
             for i in client.get("/api/v1/inbox", headers=staff).json()["items"]}
    # Its words become a training example (approved) and a question variant of answer 105.
    example = client.post(f"/api/v1/inbox/{items['u-4']}/assign-intent", headers=staff,
                          json={"intent": "card_not_working"}).json()
    assert client.post(f"/api/v1/training-examples/{example['id']}/approve",
                       headers=staff).status_code == 200
    current = client.get("/api/v1/answers/105", headers=staff).json()
    assert client.patch("/api/v1/answers/105", headers=staff, json={
        "base_revision": current["revision"],
        "questions": [*current["questions"], "Problem with my card"]}).status_code == 200
    # A retraining job trained on it: its data snapshot and build hold the words.
    with Session(get_engine()) as session:
        job = jobs.enqueue(session, "ada", {})
        session.commit()
        job_id = job.id
        session.add(ModelVersion(model_id="m-trained-on-it", path="/nowhere.tar.gz",
                                 file_name="nowhere.tar.gz", sha256="0" * 64, size_bytes=1,
                                 job_id=job_id, status="candidate"))
        session.commit()
    job_dir = get_settings().var_dir / "retrain" / f"job-{job_id}"
    (job_dir / "build" / "data").mkdir(parents=True)
    (job_dir / "snapshot.json").write_text(json.dumps({"approved_example_ids": [example["id"]]}))
    (job_dir / "build" / "data" / "nlu.yml").write_text(
        "nlu:\n- intent: card_not_working\n  examples: |\n    - Problem  with my CARD\n"
        "    - my card is broken\n")

    # The retriever cached the variant's vector (as the action server does, next to its index).
    import numpy as np

    from common.config import get_settings
    from common.files import weights_fingerprint
    from retrieval.cache import EmbeddingCache, text_key

    model_id = weights_fingerprint(get_settings().encoder_models[0])
    cache = EmbeddingCache(get_settings().index_dir / "embeddings.sqlite", dim=4)
    key = text_key(model_id, "Problem with my card")
    cache.put_many({key: np.ones(4, dtype=np.float32),
                    text_key(model_id, "my card is broken"): np.ones(4, dtype=np.float32)})

    # The customer's side of the right first: everything kept about them, as JSON.
    export = client.get("/api/v1/conversations/c-clarify/export", headers=admin)
    assert export.status_code == 200, export.text
    assert [e["text"] for e in export.json()["entries"] if e["kind"] == "customer"] == [words]
    assert [e["id"] for e in export.json()["training_examples"]] == [example["id"]]
    assert client.get("/api/v1/conversations/c-clarify/export",
                      headers=staff).status_code == 403

    erased = client.delete("/api/v1/conversations/c-clarify", headers=admin)
    assert erased.status_code == 200, erased.text
    counts = erased.json()
    assert counts["training_examples"] == 1 and counts["question_variants"] == 1
    assert counts["revisions_scrubbed"] >= 1 and counts["job_files_scrubbed"] == 1
    assert counts["models_trained_on_it"] == ["m-trained-on-it"]
    assert counts["cached_vectors"] == 1
    assert cache.get_many([key]) == {} and len(cache) == 1  # only the erased words' vector
    cache.close()
    assert client.get(f"/api/v1/training-examples/{example['id']}",
                      headers=staff).status_code == 404
    answer = client.get("/api/v1/answers/105", headers=staff).json()
    assert words not in [q.lower() for q in answer["questions"]]
    history = client.get("/api/v1/answers/105/revisions", headers=staff).json()["items"]
    assert history[0]["action"] == "erase"
    assert "[erased at the customer's request]" in json.dumps(history)
    assert words not in json.dumps(history).lower()  # history whole, words gone
    scrubbed = (job_dir / "build" / "data" / "nlu.yml").read_text()
    assert "with my card" not in scrubbed.lower() and "my card is broken" in scrubbed
    assert client.get("/api/v1/conversations/c-clarify/export",
                      headers=admin).status_code == 404


def test_two_scans_racing_for_the_same_turns_leave_their_items_and_no_error(
        postgres_url: str, tmp_path: Path) -> None:
    """A page's inbox scan and the proposals' thread may store the same turn at once: the
    loser's unique-key clash (here forced at its flush) drops its work instead of failing the
    page, and the next scan completes the items."""
    from sqlalchemy import event, insert
    from sqlmodel import Session, select

    from admin_api import inbox, migrate
    from admin_api.models import ReviewItem
    from admin_api.tracker import TrackerStore
    from common.db import get_engine

    migrate.upgrade(postgres_url)
    tracker = f"sqlite:///{tmp_path / 'tracker.db'}"
    fallback = {"actions": ["utter_no_answer"],
                "bot": [{"text": "Sorry.", "metadata": {"utter_action": "utter_no_answer"}}]}
    seed(tracker, {"race-1": [Say("blorp zing", "nlu_fallback", 0.2, "m1", "r-1", **fallback)],
                   "race-2": [Say("blorp zing", "nlu_fallback", 0.2, "m1", "r-2", **fallback)]},
         {"race-1": 20.0, "race-2": 10.0})
    store = TrackerStore(tracker)
    engine = get_engine(postgres_url)
    with Session(engine) as session:
        raced: list[bool] = []

        def the_other_scan_wins(*_: object) -> None:
            if not raced:
                raced.append(True)
                with engine.begin() as other:
                    other.execute(insert(ReviewItem.__table__).values(
                        session_id="race-1", message_id="r-1", reasons=["fallback"],
                        text="blorp zing", status="new", resolution={}, repeats=1,
                        text_key="blorp zing", turn_at=ReviewItem().turn_at))

        event.listen(session, "before_flush", the_other_scan_wins)
        assert inbox.sync(session, store, 0.5) == 0  # lost the race: no error
        event.remove(session, "before_flush", the_other_scan_wins)
        assert raced
        assert inbox.sync(session, store, 0.5) > 0  # the next scan completes the items
        [item] = session.exec(select(ReviewItem)).all()
        assert (item.session_id, item.repeats) == ("race-1", 2)
