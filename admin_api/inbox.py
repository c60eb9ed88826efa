"""The review inbox ("misunderstood" queue): which customer turns staff should look at, and
what triaging one does.

Items come from two places: the tracker store (turns the bot fell back on, asked to clarify,
or classified with low confidence), scanned incrementally from the last event seen; and
thumbs-down feedback. One turn is one item, whatever the number of reasons, and later turns
with the same words are counted in the first open or ignored item (``repeats``).
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, select

from admin_api import confirmations, crud
from admin_api.models import (
    Answer,
    Feedback,
    FeedbackStatus,
    Meta,
    ReviewItem,
    ReviewReason,
    ReviewRepeat,
    TrainingExample,
    utcnow,
)
from admin_api.tracker import TrackerStore, Turn
from common.errors import Conflict, Invalid, NotFound
from common.text import same_text_key
from retrieval.answers import MAX_QUESTIONS, QUESTION_MAX, AnswerData

logger = logging.getLogger(__name__)
CURSOR_KEY = "review_cursor"
RESCAN_MARGIN = 500


def reasons_of(turn: Turn, confidence_below: float) -> list[str]:
    reasons = []
    if turn.outcome == "fallback":
        reasons.append(ReviewReason.fallback.value)
    if turn.outcome == "clarify":
        reasons.append(ReviewReason.clarify.value)
    if turn.confidence is not None and turn.confidence < confidence_below:
        reasons.append(ReviewReason.low_confidence.value)
    return reasons


def _item_for(session: Session, turn: Turn) -> ReviewItem:
    item = session.exec(select(ReviewItem).where(ReviewItem.session_id == turn.session_id,
                                                 ReviewItem.message_id == turn.message_id)).first()
    if item is None:
        item = ReviewItem(session_id=turn.session_id, message_id=turn.message_id, reasons=[],
                          text_key=_key(turn.text))
    item.text, item.intent, item.confidence = turn.text, turn.intent, turn.confidence
    item.model_id, item.turn_at = turn.model_id, turn.at
    if item.answer_id is None and turn.answer_ids:
        item.answer_id = turn.answer_ids[0]
    return item


def _key(text: str | None) -> str | None:
    return same_text_key(text or "")[:255] or None


def _merged(session: Session, turn: Turn, reasons: list[str]) -> bool:
    """Count ``turn`` in an open or ignored item with the same words instead of making it an
    item of its own; True when it was (or already is) counted there. Items already used are
    not merged into: the same words coming back after a fix is news for staff."""
    if session.exec(select(ReviewRepeat.id).where(
            ReviewRepeat.session_id == turn.session_id,
            ReviewRepeat.message_id == turn.message_id)).first() is not None:
        return True
    key = _key(turn.text)
    if key is None or session.exec(select(ReviewItem.id).where(
            ReviewItem.session_id == turn.session_id,
            ReviewItem.message_id == turn.message_id)).first() is not None:
        return False
    earlier = session.exec(select(ReviewItem).where(
        ReviewItem.text_key == key,
        ReviewItem.status.in_([FeedbackStatus.new.value,  # type: ignore[attr-defined]
                               FeedbackStatus.ignored.value])
    ).order_by(ReviewItem.id)).first()
    if earlier is None:
        return False
    session.add(ReviewRepeat(item_id=earlier.id, session_id=turn.session_id,
                             message_id=turn.message_id, turn_at=turn.at))
    earlier.repeats += 1
    _add_reasons(earlier, reasons)
    session.add(earlier)
    session.flush()
    return True


def _add_reasons(item: ReviewItem, reasons: list[str]) -> None:
    item.reasons = sorted(set(item.reasons) | set(reasons))


def sync(session: Session, store: TrackerStore, confidence_below: float) -> int:
    """Scan tracker events written since the last scan; returns how many items were touched.

    Another scan (a second API process, or the proposals' thread) may store the same turns
    first, which this one learns as a unique-key clash, at a flush or at the commit: then its
    items stand, this scan's work is dropped, and the next scan starts from its cursor.
    """
    try:
        return _scan(session, store, confidence_below)
    except IntegrityError:
        session.rollback()
        logger.info("review inbox: another scan stored these turns first")
        return 0


def _scan(session: Session, store: TrackerStore, confidence_below: float) -> int:
    """The scan itself (see ``sync``).

    Feedback that arrived before its conversation's turn was saved is completed here, when
    that conversation shows up among the new turns (not on every call: feedback for a
    conversation that never reaches the store would be looked up again and again).
    """
    cursor_row = session.get(Meta, CURSOR_KEY)
    cursor = int(cursor_row.value) if cursor_row else 0
    last = store.last_event_id()
    touched, fresh_sessions = 0, set()
    if last > cursor:
        # Rescan a margin before the cursor: on PostgreSQL, ids are handed out before commit,
        # so a turn saved by a slower Rasa request can land below ids already seen. Updating
        # an item is idempotent, so reading a turn twice is harmless.
        for turn in store.turns(after_event=max(0, cursor - RESCAN_MARGIN)):
            fresh_sessions.add(turn.session_id)
            reasons = reasons_of(turn, confidence_below)
            if reasons and turn.message_id:
                if _merged(session, turn, reasons):
                    touched += 1
                    continue
                item = _item_for(session, turn)
                _add_reasons(item, reasons)
                session.add(item)
                touched += 1
        session.merge(Meta(key=CURSOR_KEY, value=str(last)))
    if fresh_sessions:
        waiting = session.exec(select(Feedback).where(
            Feedback.text.is_(None),  # type: ignore[union-attr]
            Feedback.session_id.in_(fresh_sessions))).all()  # type: ignore[attr-defined]
        for feedback in waiting:
            touched += int(attach_feedback(session, store, feedback))
    session.commit()
    return touched


def attach_feedback(session: Session, store: TrackerStore, feedback: Feedback) -> bool:
    """Fill the feedback's text, intent and confidence from the tracker, and raise or lower
    its review item. False when the conversation is not (or not yet) readable."""
    try:
        turn = next((t for t in store.turns(session_id=feedback.session_id)
                     if t.message_id == feedback.message_id), None)
    except SQLAlchemyError as error:
        logger.warning("tracker store unreadable, feedback %s left for later: %s",
                       feedback.id, error)
        return False
    if turn is None:
        return False
    feedback.text, feedback.intent, feedback.confidence = turn.text, turn.intent, turn.confidence
    session.add(feedback)
    confirmations.on_rating(session, feedback, turn)
    item = session.exec(select(ReviewItem).where(
        ReviewItem.session_id == feedback.session_id,
        ReviewItem.message_id == feedback.message_id)).first()
    if feedback.rating == "down":
        item = item or _item_for(session, turn)
        _add_reasons(item, [ReviewReason.thumbs_down.value])
        if feedback.answer_id is not None:
            item.answer_id = feedback.answer_id
        session.add(item)
    elif item is not None and ReviewReason.thumbs_down.value in item.reasons:
        item.reasons = [r for r in item.reasons if r != ReviewReason.thumbs_down.value]
        if item.reasons or item.status != FeedbackStatus.new.value:
            session.add(item)
        else:
            session.delete(item)
    return True


def _settle(session: Session, item: ReviewItem, status: FeedbackStatus, actor: str,
            resolution: dict) -> None:
    if item.status in (FeedbackStatus.used.value, FeedbackStatus.ignored.value):
        raise Conflict(f"review item {item.id} is already {item.status}")
    item.status, item.handled_by, item.handled_at = status, actor, utcnow()
    item.resolution = resolution
    session.add(item)
    for feedback in session.exec(select(Feedback).where(
            Feedback.session_id == item.session_id,
            Feedback.message_id == item.message_id)).all():
        feedback.status = status
        session.add(feedback)


def _text(item: ReviewItem) -> str:
    text = " ".join((item.text or "").split())
    if not text:
        raise Invalid(f"review item {item.id} has no customer text to learn from")
    return text


def assign_intent(session: Session, item: ReviewItem, intent: str, actor: str) -> TrainingExample:
    """The customer meant ``intent``: their words become a (pending) training example."""
    example = TrainingExample(text=_text(item)[:QUESTION_MAX], intent=intent, source="feedback",
                              review_item_id=item.id, created_by=actor)
    session.add(example)
    session.flush()
    _settle(session, item, FeedbackStatus.used, actor,
            {"intent": intent, "training_example_id": example.id})
    return example


def link_answer(session: Session, item: ReviewItem, actor: str, answer_id: int | None,
                new_answer: AnswerData | None) -> Answer:
    """The customer's words become a question variant of an answer (existing or new), so the
    retriever finds that answer for them from the next poll on, with no retraining."""
    text = _text(item)[:QUESTION_MAX]
    if (answer_id is None) == (new_answer is None):
        raise Invalid("give exactly one of answer_id or answer")
    if new_answer is not None:
        questions = new_answer.questions
        if text.lower() not in {q.lower() for q in questions}:
            questions = [*questions, text][:MAX_QUESTIONS]
        [answer] = crud.create_answers(session, [new_answer.copy(update={"questions": questions})],
                                       actor)
    else:
        found = session.get(Answer, answer_id)
        if found is None:
            raise NotFound(f"no answer with id {answer_id}")
        answer = found
        if text.lower() not in {q.lower() for q in answer.questions}:
            if len(answer.questions) >= MAX_QUESTIONS:
                raise Invalid(f"answer {answer_id} already has {MAX_QUESTIONS} "
                                 "question variants")
            crud.update_answer(session, answer, {"questions": [*answer.questions, text]}, actor,
                               action="link")
    _settle(session, item, FeedbackStatus.used, actor, {"answer_id": answer.id})
    return answer


def ignore(session: Session, item: ReviewItem, actor: str) -> None:
    _settle(session, item, FeedbackStatus.ignored, actor, {})
