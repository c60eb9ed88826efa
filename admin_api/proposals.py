"""Proposed answers: the questions the bot could not answer, grouped by meaning, so staff
write one answer per topic instead of triaging the same question fifty times.

The questions are the open review items the bot fell back on or that got a thumbs-down, and
what customers wrote while waiting for a person after a hand-off. A background thread of the
admin API recomputes the clusters when enough new ones arrived (or staff ask for it), never in
a page request; a lease in the database lets one process of several do it. Encoding uses the
console's retriever (the same embeddings the bot searches with), and each proposal names the
existing answer nearest to it, so staff can tell "missing answer" from "answer not found".
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, select

from admin_api import crud, inbox
from admin_api.models import (
    Answer,
    AnswerProposal,
    FeedbackStatus,
    Meta,
    ProposalStatus,
    ReviewItem,
    ReviewReason,
    utcnow,
)
from admin_api.tracker import Handoff, TrackerStore
from common.config import get_settings
from common.db import get_engine
from common.errors import Conflict, Invalid, NotFound
from common.text import same_text_key
from retrieval.answers import MAX_QUESTIONS, QUESTION_MAX, AnswerData
from retrieval.clusters import cluster_questions
from retrieval.live import LiveRetriever
from retrieval.retriever import Retriever

logger = logging.getLogger(__name__)

UNANSWERED = frozenset({ReviewReason.fallback.value, ReviewReason.thumbs_down.value})
MAX_QUESTIONS_CLUSTERED = 5000  # the most recent; clustering is quadratic in memory
HANDOFF_SESSIONS = 500
SEEN_KEY = "proposals_seen"  # "<last review item id>:<last tracker event id>" at the last run
REQUEST_KEY = "proposals_requested"
LEASE_KEY = "proposals_lease"
LEASE = timedelta(minutes=10)
READY_TIMEOUT = 120.0  # the first load of the encoder
CANDIDATES = 3


def _seen(session: Session) -> tuple[int, int]:
    row = session.get(Meta, SEEN_KEY)
    if row is None:
        return 0, 0
    item, _, event = row.value.partition(":")
    return int(item or 0), int(event or 0)


def new_since_last(session: Session, store: TrackerStore) -> int:
    """Unanswered questions that arrived since the last recomputation (a hand-off counts as
    one); cheap, so the thread can ask often."""
    last_item, last_event = _seen(session)
    items = session.exec(select(ReviewItem.reasons).where(
        ReviewItem.id > last_item,  # type: ignore[operator]
        ReviewItem.status == FeedbackStatus.new.value)).all()
    fresh = sum(1 for reasons in items if UNANSWERED & set(reasons))
    return fresh + store.pauses_after(last_event)


def _acted_on(session: Session) -> set[tuple[str, str]]:
    """Questions of proposals staff already acted on, which later runs leave out."""
    done = session.exec(select(AnswerProposal.questions).where(
        AnswerProposal.status != ProposalStatus.open.value)).all()
    return {(q["session_id"], q["message_id"]) for questions in done for q in questions}


def unanswered(session: Session, handoffs: list[Handoff]) -> list[dict[str, Any]]:
    """The questions to cluster, newest first, one per distinct wording (with its count)."""
    skip = _acted_on(session)
    items = session.exec(select(ReviewItem).where(
        ReviewItem.status == FeedbackStatus.new.value)
        .order_by(ReviewItem.turn_at.desc())).all()  # type: ignore[attr-defined]
    questions: list[dict[str, Any]] = []
    for item in items:
        if UNANSWERED & set(item.reasons) and item.text and (
                item.session_id, item.message_id) not in skip:
            questions.append({"text": item.text, "session_id": item.session_id,
                              "message_id": item.message_id, "item_id": item.id,
                              "repeats": item.repeats, "at": item.turn_at})
    for handoff in handoffs:
        for turn in handoff.waiting:
            if (turn.session_id, turn.message_id) not in skip:
                questions.append({"text": turn.text, "session_id": turn.session_id,
                                  "message_id": turn.message_id, "item_id": None,
                                  "repeats": 1, "at": turn.at})
    questions.sort(key=lambda q: q["at"], reverse=True)
    distinct: dict[str, dict[str, Any]] = {}
    for question in questions:
        key = same_text_key(question["text"])
        if key in distinct:
            distinct[key]["repeats"] += question["repeats"]
        elif key:
            distinct[key] = question
        if len(distinct) >= MAX_QUESTIONS_CLUSTERED:
            break
    return [{k: v for k, v in q.items() if k != "at"} for q in distinct.values()]


def compute(session: Session, store: TrackerStore, retriever: Retriever) -> list[AnswerProposal]:
    """Replace the open proposals with a fresh clustering; the caller commits."""
    last_item = session.exec(select(  # type: ignore[call-overload]
        func.max(ReviewItem.id))).one() or 0
    last_event = store.last_event_id()
    handoffs = store.handoffs(HANDOFF_SESSIONS)
    questions = unanswered(session, handoffs)
    replies = {h.session_id: h.staff_replies for h in handoffs}
    proposals = []
    if questions:
        vectors = retriever.encoder.encode([q["text"] for q in questions])
        for cluster in cluster_questions(vectors):
            members = [questions[i] for i in cluster.members]
            label = members[0]["text"]
            top = retriever.search(label, k=1).top
            bodies: list[dict[str, str]] = []
            for member in members:
                for text in replies.get(member["session_id"], []):
                    if len(bodies) < CANDIDATES and text not in {b["text"] for b in bodies}:
                        bodies.append({"text": text, "session_id": member["session_id"]})
            proposals.append(AnswerProposal(
                label=label, size=sum(m["repeats"] for m in members), questions=members,
                nearest_answer_id=top.answer_id if top else None,
                nearest_title=top.title[:200] if top else None,
                nearest_score=round(top.score, 4) if top else None,
                candidate_bodies=bodies))
    for stale in session.exec(select(AnswerProposal).where(
            AnswerProposal.status == ProposalStatus.open.value)).all():
        session.delete(stale)
    for proposal in proposals:
        session.add(proposal)
    session.merge(Meta(key=SEEN_KEY, value=f"{last_item}:{last_event}"))
    request = session.get(Meta, REQUEST_KEY)
    if request is not None:
        session.delete(request)
    return proposals


def request_refresh(session: Session) -> None:
    """Ask for a recomputation at the thread's next check, however few questions are new."""
    session.merge(Meta(key=REQUEST_KEY, value=utcnow().isoformat()))


def refresh_pending(session: Session) -> bool:
    return session.get(Meta, REQUEST_KEY) is not None


def _take_lease(session: Session, holder: str) -> bool:
    """One process at a time recomputes; a lease left by a dead process expires."""
    now = utcnow()
    value = f"{holder}|{(now + LEASE).isoformat()}"
    row = session.get(Meta, LEASE_KEY)
    if row is None:
        try:
            session.add(Meta(key=LEASE_KEY, value=value))
            session.commit()
            return True
        except IntegrityError:
            session.rollback()
            return False
    owner, _, until = row.value.partition("|")
    if owner != holder and until and until > now.isoformat():
        return False
    taken = session.execute(update(Meta).where(
        Meta.key == LEASE_KEY, Meta.value == row.value).values(value=value))
    session.commit()
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def _release_lease(session: Session, holder: str) -> None:
    row = session.get(Meta, LEASE_KEY)
    if row is not None and row.value.startswith(holder + "|"):
        session.delete(row)
        session.commit()


def check(store: TrackerStore, retriever: Callable[[], Retriever | None],
          holder: str) -> int | None:
    """One pass of the thread: sync the inbox, and recompute when due; the number of
    proposals made, or None when nothing was due (or the retriever is not loaded yet, or
    another process holds the lease: the next pass tries again)."""
    settings = get_settings()
    with Session(get_engine()) as session:
        inbox.sync(session, store, settings.review_confidence_below)
        due = refresh_pending(session) or (
            new_since_last(session, store) >= settings.proposal_min_new)
        if not due:
            return None
        loaded = retriever()
        if loaded is None or not _take_lease(session, holder):
            return None
        try:
            made = compute(session, store, loaded)
            session.commit()
            return len(made)
        finally:
            _release_lease(session, holder)


def start_worker(stop: threading.Event, live: LiveRetriever) -> threading.Thread | None:
    """Check every ``proposal_check_seconds`` until ``stop`` is set (none: 0). ``live`` is the
    console's retriever, loaded the first time a recomputation is due."""
    interval = get_settings().proposal_check_seconds
    if interval <= 0:
        return None
    holder = f"{socket.gethostname()}:{os.getpid()}"

    def loop() -> None:
        while not stop.wait(interval):
            try:
                made = check(TrackerStore(get_settings().tracker_store_url),
                             lambda: live.ready(timeout=READY_TIMEOUT), holder)
                if made is not None:
                    logger.info("proposed answers: %d clusters", made)
            except (SQLAlchemyError, ValueError, RuntimeError) as error:
                logger.warning("proposed answers not recomputed, will retry: %s", error)

    thread = threading.Thread(target=loop, name="answer-proposals", daemon=True)
    thread.start()
    return thread


def _open(session: Session, proposal_id: int) -> AnswerProposal:
    proposal = session.get(AnswerProposal, proposal_id)
    if proposal is None:
        raise NotFound(f"no proposal with id {proposal_id}")
    if proposal.status != ProposalStatus.open.value:
        raise Conflict(f"proposal {proposal_id} is already {proposal.status}")
    return proposal


def _settle(session: Session, proposal: AnswerProposal, status: ProposalStatus,
            answer_id: int | None, actor: str) -> None:
    """Mark the proposal and the review items among its questions as handled."""
    proposal.status, proposal.answer_id = status, answer_id
    proposal.handled_by, proposal.handled_at = actor, utcnow()
    session.add(proposal)
    if status == ProposalStatus.dismissed:
        return
    ids = [q["item_id"] for q in proposal.questions if q.get("item_id")]
    for item in session.exec(select(ReviewItem).where(
            ReviewItem.id.in_(ids),  # type: ignore[union-attr]
            ReviewItem.status == FeedbackStatus.new.value)).all():
        item.status, item.handled_by, item.handled_at = FeedbackStatus.used, actor, utcnow()
        item.resolution = {"answer_id": answer_id, "proposal_id": proposal.id}
        session.add(item)


def _variants(proposal: AnswerProposal, chosen: list[str] | None) -> list[str]:
    texts = [" ".join(q["text"].split())[:QUESTION_MAX] for q in proposal.questions]
    if chosen is not None:
        wanted = {c.lower() for c in chosen}
        texts = [t for t in texts if t.lower() in wanted]
    unique: dict[str, str] = {}
    for text in texts:
        unique.setdefault(text.lower(), text)
    return list(unique.values())


def make_draft(session: Session, proposal_id: int, title: str, body: str,
               intent: str | None, chosen: list[str] | None, actor: str) -> Answer:
    """A new draft answer with the proposal's questions as variants; the caller commits."""
    proposal = _open(session, proposal_id)
    questions = _variants(proposal, chosen)[:MAX_QUESTIONS]
    if not questions:
        raise Invalid("choose at least one of the proposal's questions")
    try:
        data = AnswerData.parse_obj({"title": title, "body": body, "intent": intent or None,
                                     "questions": questions})
    except ValidationError as error:
        raise Invalid("; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                for e in error.errors())) from None
    [answer] = crud.create_answers(session, [data], actor)
    _settle(session, proposal, ProposalStatus.drafted, answer.id, actor)
    return answer


def attach(session: Session, proposal_id: int, answer_id: int, chosen: list[str] | None,
           actor: str) -> tuple[Answer, int]:
    """The proposal's questions become variants of an existing answer (those it lacks, up to
    the limit); returns the answer and how many were added. The caller commits."""
    proposal = _open(session, proposal_id)
    answer = session.get(Answer, answer_id)
    if answer is None:
        raise NotFound(f"no answer with id {answer_id}")
    have = {q.lower() for q in answer.questions}
    new = [t for t in _variants(proposal, chosen) if t.lower() not in have]
    room = MAX_QUESTIONS - len(answer.questions)
    if new and room <= 0:
        raise Invalid(f"answer {answer_id} already has {MAX_QUESTIONS} question variants")
    added = new[:room]
    if added:
        crud.update_answer(session, answer, {"questions": [*answer.questions, *added]}, actor,
                           action="link")
    _settle(session, proposal, ProposalStatus.attached, answer.id, actor)
    return answer, len(added)


def dismiss(session: Session, proposal_id: int, actor: str) -> None:
    _settle(session, _open(session, proposal_id), ProposalStatus.dismissed, None, actor)


def erase_conversation(session: Session, session_id: str) -> int:
    """Remove a conversation's questions and staff replies from every proposal (a proposal
    left with no question goes); returns how many proposals changed."""
    changed = 0
    for proposal in session.exec(select(AnswerProposal)).all():
        questions = [q for q in proposal.questions if q["session_id"] != session_id]
        bodies = [b for b in proposal.candidate_bodies if b["session_id"] != session_id]
        if len(questions) == len(proposal.questions) and len(bodies) == len(
                proposal.candidate_bodies):
            continue
        changed += 1
        if not questions:
            session.delete(proposal)
            continue
        proposal.questions, proposal.candidate_bodies = questions, bodies
        proposal.size = sum(q["repeats"] for q in questions)
        proposal.label = questions[0]["text"]
        session.add(proposal)
    return changed
