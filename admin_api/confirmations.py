"""Customers' thumbs-up as training data: the intent the bot understood, confirmed.

A thumbs-down sends a turn to the review inbox, where staff correct it; that teaches the
model its mistakes. A thumbs-up says the bot understood: the customer's words, under the
intent the bot read, are an example of that intent in the customers' own phrasing. The
retraining loop trains on them (never judges on them: every one is a message production got
right, so an evaluation set built from them would favour production).

Only turns the bot acted on count: not a fallback, a clarification question, or a turn whose
intent is unknown. A customer who later turns the thumbs-up into a thumbs-down withdraws the
example (staff's own rejections stay as they are).
"""

from __future__ import annotations

from sqlmodel import Session, select

from admin_api.models import ExampleSource, ExampleStatus, Feedback, TrainingExample, utcnow
from admin_api.tracker import Turn
from common import audit
from common.config import get_settings
from retrieval.answers import QUESTION_MAX

NOT_CONFIRMABLE_OUTCOMES = {"fallback", "clarify", "none"}
NOT_CONFIRMABLE_INTENTS = {"nlu_fallback"}
CUSTOMER = "customer"  # the actor of a withdrawal in the audit log


def confirmable(turn: Turn) -> bool:
    return (bool(turn.intent) and turn.intent not in NOT_CONFIRMABLE_INTENTS
            and turn.outcome not in NOT_CONFIRMABLE_OUTCOMES)


def on_rating(session: Session, feedback: Feedback, turn: Turn) -> TrainingExample | None:
    """Create, withdraw or restore the example a rating implies; returns the example touched."""
    mode = get_settings().confirmed_examples
    text = " ".join(turn.text.split())[:QUESTION_MAX]
    if feedback.rating == "up" and (mode == "off" or not text or not confirmable(turn)):
        return None  # the public intake's common case: no query at all
    existing = session.exec(select(TrainingExample).where(
        TrainingExample.feedback_id == feedback.id)).first()
    if feedback.rating == "down":
        if existing is None or existing.status == ExampleStatus.rejected.value:
            return None
        existing.status, existing.approved_by, existing.approved_at = (
            ExampleStatus.rejected, CUSTOMER, utcnow())
        session.add(existing)
        audit.record(session, CUSTOMER, "training_example.withdrawn", "training_example",
                     existing.id)
        return existing
    status = ExampleStatus.approved if mode == "auto" else ExampleStatus.pending
    if existing is not None:
        if existing.status != ExampleStatus.rejected.value or existing.approved_by != CUSTOMER:
            return None  # already there, or staff rejected it: their call stands
        existing.status = status
        existing.approved_by, existing.approved_at = (
            (CUSTOMER, utcnow()) if mode == "auto" else (None, None))
        session.add(existing)
        return existing
    if session.exec(select(TrainingExample.id).where(
            TrainingExample.text == text, TrainingExample.intent == turn.intent,
            TrainingExample.status != ExampleStatus.rejected.value)).first() is not None:
        return None  # "thanks" confirmed a thousand times is one example
    example = TrainingExample(text=text, intent=turn.intent or "",
                              source=ExampleSource.confirmed.value, status=status.value,
                              feedback_id=feedback.id, created_by=CUSTOMER)
    if mode == "auto":
        example.approved_by, example.approved_at = CUSTOMER, utcnow()
    session.add(example)
    return example
