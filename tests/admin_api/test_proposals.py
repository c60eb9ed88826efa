"""Proposed answers over a real tracker store and admin database (SQLite and PostgreSQL):
which questions count, when the worker recomputes, and what staff do with a proposal."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api import proposals, retention
from admin_api.models import (
    Answer,
    AnswerProposal,
    FeedbackStatus,
    ProposalStatus,
    ReviewItem,
)
from admin_api.tracker import TrackerStore
from common.config import get_settings
from common.db import get_engine
from common.errors import Conflict
from retrieval.answers import AnswerData
from retrieval.retriever import Retriever
from tests.admin_api.test_console import signed_in
from tests.conftest import JOINT_ACCOUNT, ONE_OFF_QUESTIONS, TRAVEL_INSURANCE
from tests.tracker_seed import Say, seed

STAFF_REPLY = "Yes: **travel insurance** comes with Premium accounts."
WAITING = "Can I get travel insurance for my trip?"


def _fallback(text: str, message_id: str) -> list[Say]:
    return [Say(text, "nlu_fallback", 0.2, "m1", message_id, actions=["utter_no_answer"],
                bot=[{"text": "Sorry, I don't know.",
                      "metadata": {"utter_action": "utter_no_answer"}}])]


def _seed_unanswered(url: str) -> None:
    conversations = {f"fb-{i}": _fallback(text, f"u-{i}") for i, text in
                     enumerate(TRAVEL_INSURANCE[:4] + JOINT_ACCOUNT + ONE_OFF_QUESTIONS)}
    # A customer handed to a person: what they wrote while waiting is an unanswered question,
    # and what staff replied is a candidate body for its topic.
    conversations["ho-1"] = [
        Say("/request_human", "request_human", 1.0, "m1", "h-1", pause=True),
        Say(WAITING, "nlu_fallback", 0.3, "m1", "h-2",
            bot=[{"text": STAFF_REPLY, "metadata": {"staff": "ada"}}]),
    ]
    seed(url, conversations, {k: 600.0 - i for i, k in enumerate(conversations)})


def _retriever(session: Session, encoder) -> Retriever:
    answers = [AnswerData(**{k: getattr(a, k) for k in AnswerData.__fields__})
               for a in session.exec(select(Answer).order_by(Answer.id).limit(12)).all()]
    built = Retriever(encoder, device="cpu")
    built.replace_all(answers, version=1)
    return built


def _open(session: Session) -> list[AnswerProposal]:
    return list(session.exec(select(AnswerProposal).where(
        AnswerProposal.status == ProposalStatus.open.value)).all())


def _recompute(store: TrackerStore, retriever: Retriever) -> int | None:
    with Session(get_engine()) as session:
        proposals.request_refresh(session)
        session.commit()
    return proposals.check(store, lambda: retriever, "test")


def _texts(proposal: AnswerProposal) -> set[str]:
    return {q["text"] for q in proposal.questions}


@pytest.fixture
def unanswered(client: TestClient, tracker_url: str, encoder) -> tuple[TrackerStore, Retriever]:
    _seed_unanswered(tracker_url)
    with Session(get_engine()) as session:
        return TrackerStore(tracker_url), _retriever(session, encoder)


def test_the_worker_waits_for_enough_new_questions_or_a_request(
        unanswered: tuple[TrackerStore, Retriever], monkeypatch: pytest.MonkeyPatch) -> None:
    store, retriever = unanswered
    monkeypatch.setenv("HELPDESK_PROPOSAL_MIN_NEW", "20")
    get_settings.cache_clear()
    assert proposals.check(store, lambda: retriever, "test") is None  # 12 fallbacks, 1 hand-off
    with Session(get_engine()) as session:
        assert session.exec(select(ReviewItem)).all()  # the pass synced the inbox all the same
        assert proposals.new_since_last(session, store) == 13
        assert not _open(session)
        proposals.request_refresh(session)
        session.commit()
    assert proposals.check(store, lambda: retriever, "test") == 2
    with Session(get_engine()) as session:
        assert proposals.new_since_last(session, store) == 0 and not proposals.refresh_pending(
            session)
    assert proposals.check(store, lambda: retriever, "test") is None  # nothing new since
    # A lease held by another live process means this one leaves the work to it.
    with Session(get_engine()) as session:
        proposals.request_refresh(session)
        session.commit()
        assert proposals._take_lease(session, "other-host:1")
    assert proposals.check(store, lambda: retriever, "test") is None
    monkeypatch.setenv("HELPDESK_PROPOSAL_MIN_NEW", "10")
    get_settings.cache_clear()


def test_two_topics_become_two_proposals_with_the_hand_off_reply_offered(
        unanswered: tuple[TrackerStore, Retriever]) -> None:
    store, retriever = unanswered
    assert _recompute(store, retriever) == 2
    with Session(get_engine()) as session:
        found = _open(session)
        travel = next(p for p in found if _texts(p) & set(TRAVEL_INSURANCE))
        joint = next(p for p in found if _texts(p) & set(JOINT_ACCOUNT))
        assert _texts(travel) <= set(TRAVEL_INSURANCE) | {WAITING} and WAITING in _texts(travel)
        assert len(_texts(joint)) >= 4 and _texts(joint) <= set(JOINT_ACCOUNT)
        assert not any(_texts(p) & set(ONE_OFF_QUESTIONS) for p in found)
        assert [b["text"] for b in travel.candidate_bodies] == [STAFF_REPLY]
        assert joint.candidate_bodies == []
        assert travel.nearest_answer_id is not None and travel.nearest_score is not None


def test_a_proposal_becomes_a_draft_and_its_questions_do_not_come_back(
        unanswered: tuple[TrackerStore, Retriever], client: TestClient, auth: dict) -> None:
    store, retriever = unanswered
    assert _recompute(store, retriever) == 2
    staff, csrf = signed_in(client, auth["staff"])
    page = staff.get("/console/proposals")
    assert page.status_code == 200 and "Do you have joint accounts?" in page.text
    with Session(get_engine()) as session:
        travel = next(p for p in _open(session) if WAITING in _texts(p))
        joint = next(p for p in _open(session) if _texts(p) & set(JOINT_ACCOUNT))
    # Without the CSRF token nothing is made.
    assert staff.post(f"/console/proposals/{travel.id}/draft",
                      data={"title": "x", "body": "y"}).status_code == 403
    made = staff.post(f"/console/proposals/{travel.id}/draft",
                      headers={"X-CSRF-Token": csrf},
                      data={"title": "Travel insurance", "body": STAFF_REPLY,
                            "question": sorted(_texts(travel))})
    assert made.status_code == 200, made.text
    answer_id = int(re.search(r"/console/answers/(\d+)", made.headers["hx-redirect"]).group(1))
    with Session(get_engine()) as session:
        answer = session.get(Answer, answer_id)
        assert answer.status == "draft" and set(answer.questions) == _texts(travel)
        assert answer.body == STAFF_REPLY
        items = session.exec(select(ReviewItem).where(
            ReviewItem.text.in_(TRAVEL_INSURANCE))).all()
        assert items and all(i.status == FeedbackStatus.used.value for i in items)
        # Acting twice on one proposal is refused.
        with pytest.raises(Conflict):
            proposals.dismiss(session, travel.id, "sam")
    again = staff.post(f"/console/proposals/{travel.id}/draft", headers={"X-CSRF-Token": csrf},
                       data={"title": "Again", "body": "again"})
    assert again.status_code == 409 and "already drafted" in again.text
    # Recomputing leaves the drafted questions (and the hand-off's) out.
    with Session(get_engine()) as session:
        proposals.compute(session, store, retriever)
        session.commit()
        [left] = _open(session)
        assert _texts(left) <= set(JOINT_ACCOUNT)
        joint = left
    # The other proposal is attached to an existing answer: its words become variants.
    target = 101
    with Session(get_engine()) as session:
        before = list(session.get(Answer, target).questions)
    attached = staff.post(f"/console/proposals/{joint.id}/attach", headers={"X-CSRF-Token": csrf},
                          data={"answer_id": str(target), "question": sorted(_texts(joint))})
    assert attached.status_code == 200 and f"to answer {target}" in attached.text
    with Session(get_engine()) as session:
        questions = session.get(Answer, target).questions
        assert questions[:len(before)] == before and set(questions[len(before):]) == _texts(joint)
    bad = staff.post("/console/proposals/424242/attach", headers={"X-CSRF-Token": csrf},
                     data={"answer_id": "nope"})
    assert bad.status_code == 422 and "answer_id" in bad.text


def test_erasing_a_conversation_takes_its_words_out_of_every_proposal(
        unanswered: tuple[TrackerStore, Retriever]) -> None:
    store, retriever = unanswered
    assert _recompute(store, retriever) == 2
    with Session(get_engine()) as session:
        counts = retention.erase(session, store, "ho-1")
        session.commit()
        assert counts["proposals"] == 1
        travel = next(p for p in _open(session) if _texts(p) & set(TRAVEL_INSURANCE))
        assert WAITING not in _texts(travel) and travel.candidate_bodies == []
        assert all(q["session_id"] != "ho-1" for p in _open(session) for q in p.questions)
