"""The staff console over real HTTP (the app in-process, SQLite and PostgreSQL): sessions,
CSRF, roles, conflicts, the inbox's merged repeats and hand-off claims. The browser tests
(``test_console_browser.py``) drive the same pages in Chromium against the whole product."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api.console import sessions
from admin_api.handoff import next_open, parse_hours
from admin_api.models import (
    Answer,
    AnswerProposal,
    AuditEntry,
    ConsoleSession,
    ReviewItem,
    utcnow,
)
from common.db import get_engine
from common.errors import Invalid
from tests.tracker_seed import Say, banking_conversations, seed

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def signed_in(client: TestClient, headers: dict[str, str]) -> tuple[TestClient, str]:
    """A separate browser-like client signed in with the token; returns it and its CSRF."""
    browser = TestClient(client.app, base_url="http://testserver")
    reply = browser.post("/console/sign-in", data={"token": _token(headers)},
                         follow_redirects=False)
    assert reply.status_code == 303, reply.text
    page = browser.get("/console/answers")
    assert page.status_code == 200
    csrf = re.search(r'X-CSRF-Token": "([^"]+)"', page.text)
    assert csrf
    return browser, csrf.group(1)


def test_signed_out_visitors_get_the_sign_in_page_and_a_wrong_token_is_refused(
        client: TestClient) -> None:
    reply = client.get("/console/inbox", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/console/sign-in"
    wrong = client.post("/console/sign-in", data={"token": "lh_not-a-token"})
    assert wrong.status_code == 401 and "wrong, expired or revoked" in wrong.text
    assert sessions.COOKIE not in wrong.cookies


def test_signing_in_keeps_a_server_side_session_behind_a_strict_http_only_cookie(
        client: TestClient, auth: dict) -> None:
    browser = TestClient(client.app, base_url="http://testserver")
    reply = browser.post("/console/sign-in", data={"token": _token(auth["staff"])},
                         follow_redirects=False)
    cookie = reply.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    secret = browser.cookies[sessions.COOKIE]
    assert secret not in cookie.split(";", 1)[1]
    with Session(get_engine()) as db:
        [row] = db.exec(select(ConsoleSession)).all()
        assert row.secret_hash != secret and len(row.secret_hash) == 64
    page = browser.get("/console/answers")
    assert "sam (staff)" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert _token(auth["staff"]) not in page.text  # the token never reaches the page


def test_a_sign_in_posted_from_another_site_is_refused(client: TestClient, auth: dict) -> None:
    reply = client.post("/console/sign-in", data={"token": _token(auth["staff"])},
                        headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert reply.status_code == 403 and sessions.COOKIE not in reply.cookies


def test_revoking_the_token_signed_in_with_ends_the_console_session_at_once(
        client: TestClient, auth: dict) -> None:
    browser, csrf = signed_in(client, auth["staff"])
    other, _ = signed_in(client, auth["admin"])
    with Session(get_engine()) as db:
        row = db.exec(select(ConsoleSession).where(ConsoleSession.csrf_token == csrf)).one()
        assert row.token_id is not None
    revoked = client.delete(f"/api/v1/tokens/{row.token_id}", headers=auth["admin"])
    assert revoked.status_code == 204
    refused = browser.get("/console/answers", follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == "/console/sign-in"
    assert other.get("/console/answers").status_code == 200  # other people's sessions stay


def test_an_expired_or_signed_out_session_no_longer_opens_the_console(
        client: TestClient, auth: dict) -> None:
    browser, csrf = signed_in(client, auth["staff"])
    with Session(get_engine()) as db:
        row = db.exec(select(ConsoleSession)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.add(row)
        db.commit()
    assert browser.get("/console/answers", follow_redirects=False).status_code == 303
    again, csrf = signed_in(client, auth["staff"])
    out = again.post("/console/sign-out", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204 and out.headers["hx-redirect"] == "/console/sign-in"
    again.cookies.clear()
    with Session(get_engine()) as db:
        secret_rows = db.exec(select(ConsoleSession).where(
            ConsoleSession.ended_at.is_not(None))).all()  # type: ignore[union-attr]
        assert len(secret_rows) == 1


def test_a_write_without_the_csrf_token_is_refused_and_changes_nothing(
        client: TestClient, auth: dict) -> None:
    browser, _ = signed_in(client, auth["staff"])
    reply = browser.post("/console/answers/101/unpublish")
    assert reply.status_code == 403 and "CSRF" in reply.text
    wrong = browser.post("/console/answers/101/unpublish", headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    with Session(get_engine()) as db:
        assert db.get(Answer, 101).status == "published"  # type: ignore[union-attr]


def test_staff_are_refused_admin_actions_on_the_page_and_when_posting_directly(
        client: TestClient, auth: dict, tracker_url: str) -> None:
    conversations, ages = banking_conversations()
    seed(tracker_url, conversations, ages)
    staff, csrf = signed_in(client, auth["staff"])
    page = staff.get("/console/conversations/c-answer")
    assert page.status_code == 200 and "Erase conversation" not in page.text
    refused = staff.post("/console/conversations/c-answer/erase", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403 and "admin role" in refused.text
    assert "c-answer" in staff.get("/console/conversations").text
    admin, admin_csrf = signed_in(client, auth["admin"])
    assert "Erase conversation" in admin.get("/console/conversations/c-answer").text
    erased = admin.post("/console/conversations/c-answer/erase",
                        headers={"X-CSRF-Token": admin_csrf})
    assert erased.status_code == 200 and erased.headers["hx-redirect"] == "/console/conversations"
    assert admin.get("/console/conversations/c-answer").status_code == 404


def test_a_colleagues_save_in_between_is_shown_beside_mine_and_not_overwritten(
        client: TestClient, auth: dict) -> None:
    sam, sam_csrf = signed_in(client, auth["staff"])
    ada, ada_csrf = signed_in(client, auth["admin"])
    form = {"base_revision": "1", "title": "Card delivery", "intent": "card_arrival",
            "questions": "When will my card arrive?"}
    first = ada.post("/console/answers/101", data={**form, "body": "Ada's body"},
                     headers={"X-CSRF-Token": ada_csrf})
    assert first.status_code == 200 and "Saved as revision 2" in first.text
    second = sam.post("/console/answers/101", data={**form, "body": "Sam's body"},
                      headers={"X-CSRF-Token": sam_csrf})
    assert second.status_code == 409
    assert "Ada&#39;s body" in second.text and "Sam&#39;s body" in second.text
    with Session(get_engine()) as db:
        row = db.get(Answer, 101)
        assert row is not None and row.body == "Ada's body" and row.revision == 2


def test_hostile_text_is_escaped_on_every_list_and_editor(client: TestClient, auth: dict,
                                                          tracker_url: str) -> None:
    staff, csrf = signed_in(client, auth["staff"])
    made = staff.post("/console/answers", data={"title": HOSTILE, "body": HOSTILE,
                                                "questions": HOSTILE},
                      headers={"X-CSRF-Token": csrf})
    assert made.status_code == 200, made.text
    answer_id = int(made.headers["hx-redirect"].rsplit("/", 1)[1])
    seed(tracker_url, {"c-evil": [Say(HOSTILE, "request_human", 0.9, "m1", "u-evil",
                                      pause=True)],
                       "c-evil-2": [Say(HOSTILE, "nlu_fallback", 0.1, "m1", "u-evil-2",
                                        actions=["utter_no_answer"])]},
         {"c-evil": 60, "c-evil-2": 50})
    with Session(get_engine()) as session:
        question = {"text": HOSTILE, "session_id": "c-evil-2", "message_id": "u-evil-2",
                    "item_id": None, "repeats": 1}
        session.add(AnswerProposal(label=HOSTILE, size=4, questions=[question] * 4,
                                   nearest_answer_id=answer_id, nearest_title=HOSTILE,
                                   nearest_score=0.5,
                                   candidate_bodies=[{"text": HOSTILE, "session_id": "c-evil"}]))
        session.commit()
    assert staff.get("/console/inbox/counts").status_code == 200  # scans the new turns
    with Session(get_engine()) as session:
        item_id = session.exec(select(ReviewItem.id).where(
            ReviewItem.session_id == "c-evil-2")).one()
    for path in ("/console/answers", f"/console/answers/{answer_id}",
                 f"/console/answers/{answer_id}/history", "/console/handoff",
                 "/console/conversations", "/console/conversations/c-evil",
                 "/console/handoff/c-evil", "/console/inbox?reason=fallback",
                 f"/console/inbox/{item_id}", "/console/proposals"):
        page = staff.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text, path
        assert "&lt;script&gt;" in page.text, path


def test_repeats_of_the_same_words_merge_into_one_item_and_an_ignored_one_stays_ignored(
        client: TestClient, auth: dict, tracker_url: str) -> None:
    def fallback(session_id: str, message_id: str, text: str) -> dict:
        return {session_id: [Say(text, "nlu_fallback", 0.2, "m1", message_id,
                                 actions=["action_answer"],
                                 bot=[{"text": "Sorry.",
                                       "metadata": {"utter_action": "utter_no_answer"}}])]}

    staff, csrf = signed_in(client, auth["staff"])
    seed(tracker_url, fallback("r-1", "m-1", "Do you sell gift cards?"), {"r-1": 300})
    page = staff.get("/console/inbox?reason=fallback")
    [item_id] = re.findall(r'id="item-(\d+)"', page.text)
    ignored = staff.post(f"/console/inbox/{item_id}/ignore", headers={"X-CSRF-Token": csrf})
    assert ignored.status_code == 200 and "Ignored" in ignored.text
    seed(tracker_url, {**fallback("r-2", "m-2", "do you sell GIFT cards"),
                       **fallback("r-3", "m-3", "Something else entirely")},
         {"r-2": 200, "r-3": 100})
    for _ in range(2):  # a rescan must not count a turn twice
        page = staff.get("/console/inbox?reason=fallback")
    assert "Something else entirely" in page.text and "gift cards" not in page.text.lower()
    with Session(get_engine()) as db:
        items = db.exec(select(ReviewItem).order_by(ReviewItem.id)).all()
        by_text = {i.text: i for i in items}
        assert by_text["Do you sell gift cards?"].status == "ignored"
        assert by_text["Do you sell gift cards?"].repeats == 2
        assert "do you sell GIFT cards" not in by_text
    ignored_tab = staff.get("/console/inbox?reason=fallback&status=ignored")
    assert "Do you sell gift cards?" in ignored_tab.text and "×2" in ignored_tab.text


def test_one_staff_member_holds_a_hand_off_at_a_time(client: TestClient, auth: dict,
                                                      tracker_url: str) -> None:
    conversations, ages = banking_conversations()
    seed(tracker_url, conversations, ages)
    sam, sam_csrf = signed_in(client, auth["staff"])
    ada, ada_csrf = signed_in(client, auth["admin"])
    taken = sam.post("/console/handoff/c-handoff/claim", headers={"X-CSRF-Token": sam_csrf})
    assert taken.status_code == 200 and taken.headers["hx-redirect"] == "/console/handoff/c-handoff"
    refused = ada.post("/console/handoff/c-handoff/claim", headers={"X-CSRF-Token": ada_csrf})
    assert refused.status_code == 409 and "sam is handling" in refused.text
    page = ada.get("/console/handoff/c-handoff")
    assert "sam is handling this conversation" in page.text and "reply-form" not in page.text
    queue = client.get("/api/v1/handoff", headers=auth["admin"]).json()
    assert queue[0]["holder"] == "sam"
    released = sam.post("/console/handoff/c-handoff/release", headers={"X-CSRF-Token": sam_csrf})
    assert released.status_code == 200
    assert ada.post("/console/handoff/c-handoff/claim",
                    headers={"X-CSRF-Token": ada_csrf}).status_code == 200
    with Session(get_engine()) as db:
        actions = [e.action for e in db.exec(select(AuditEntry)).all()]
    assert actions.count("handoff.claim") == 2 and "handoff.release" in actions


def test_a_claim_whose_holder_is_gone_returns_to_the_queue(
        client: TestClient, auth: dict, tracker_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    conversations, ages = banking_conversations()
    seed(tracker_url, conversations, ages)
    sam, sam_csrf = signed_in(client, auth["staff"])
    ada, ada_csrf = signed_in(client, auth["admin"])
    assert sam.post("/console/handoff/c-handoff/claim",
                    headers={"X-CSRF-Token": sam_csrf}).status_code == 200
    from admin_api.models import HandoffClaim

    with Session(get_engine()) as db:
        claim = db.get(HandoffClaim, "c-handoff")
        assert claim is not None
        claim.last_seen_at = utcnow() - timedelta(minutes=5)
        db.add(claim)
        db.commit()
    assert "nobody" in ada.get("/console/handoff").text
    assert ada.post("/console/handoff/c-handoff/claim",
                    headers={"X-CSRF-Token": ada_csrf}).status_code == 200


def test_waiting_customers_hear_when_the_team_is_next_available_when_nobody_is_online(
        client: TestClient, auth: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from common.config import get_settings

    monkeypatch.setenv("HELPDESK_OPENING_HOURS", "Mon 09:00-10:00")
    get_settings.cache_clear()
    closed = client.get("/api/v1/handoff/availability").json()
    assert closed["staff_online"] is False and "Monday 09:00 (UTC)" in closed["message"]
    signed_in(client, auth["staff"])
    online = client.get("/api/v1/handoff/availability").json()
    assert online == {"staff_online": True, "next_open": None,
                      "message": "Thanks, a colleague will reply here shortly."}


def test_opening_hours_give_the_next_opening() -> None:
    assert parse_hours("Mon-Tue 09:00-17:00; Sat 10:00-14:00") == [
        (0, 540, 1020), (1, 540, 1020), (5, 600, 840)]
    friday_evening = datetime(2026, 12, 4, 18, 0, tzinfo=timezone.utc)
    assert next_open(friday_evening, "Mon-Fri 09:00-17:00", "UTC") == \
        datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
    inside = datetime(2026, 12, 7, 10, 30, tzinfo=timezone.utc)
    assert next_open(inside, "Mon-Fri 09:00-17:00", "UTC") == inside
    paris = next_open(friday_evening, "Sat 09:00-12:00", "Europe/Paris")
    assert paris is not None and paris.utcoffset() == timedelta(hours=1) and paris.hour == 9
    assert next_open(friday_evening, "", "UTC") is None
    with pytest.raises(Invalid, match="Mon-Fri 09:00-17:00"):
        parse_hours("weekdays 9 to 5")
