"""Conversations, read from Rasa's tracker store: list and search, transcripts with what the
bot understood and answered per turn, erasure on request (with everything derived from the
customer's words) and its counterpart, the export of what is kept about one customer, and the
retention period."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field as PField
from sqlmodel import Session, select

from admin_api import retention
from admin_api.api.deps import (
    AdminUser,
    SessionDep,
    StaffUser,
    TrackerDep,
)
from admin_api.api.paging import Page, Paging, Window, not_found, sort_param
from admin_api.core.schema import ApiModel
from admin_api.models import (
    Feedback,
    FeedbackRead,
    Rating,
    ReviewItem,
    ReviewItemRead,
    TrainingExampleRead,
)
from admin_api.tracker import from_timestamp, unwrap_custom
from common import audit
from common.text import INTENT_PATTERN

router = APIRouter(prefix="/conversations", tags=["conversations"])
SessionId = Path(..., min_length=1, max_length=255)


class ConversationSummary(ApiModel):
    session_id: str
    first_at: datetime
    last_at: datetime
    messages: int
    paused: bool


class TranscriptEntry(ApiModel):
    kind: str = PField(..., description="customer, bot, staff, handoff or resumed")
    at: datetime
    text: str | None = None
    message_id: str | None = None
    intent: str | None = None
    confidence: float | None = None
    model_id: str | None = None
    answer_id: int | None = None
    decision: str | None = None
    buttons: list[dict] = []


class Transcript(ApiModel):
    session_id: str
    paused: bool
    entries: list[TranscriptEntry]


class Erasure(ApiModel):
    """What an erasure removed, and the models that still hold the words until retrained."""

    events: int
    feedback: int
    review_items: int
    review_repeats: int = PField(..., description="Turns with the same words merged into "
                                                  "review items, removed")
    proposals: int = PField(..., description="Proposed answers that held its questions or "
                                             "its staff replies, cleaned")
    turn_facts: int = PField(..., description="Its turns in the dashboard's figures, removed")
    replayed_turns: int = PField(..., description="Its turns in the threshold simulator's "
                                                  "replay, removed")
    training_examples: int
    question_variants: int
    cached_vectors: int = PField(..., description="The retriever's cached vectors of the "
                                                  "words, deleted")
    revisions_scrubbed: int = PField(..., description="Answer revisions whose variants were "
                                                      "replaced by a marker")
    job_files_scrubbed: int
    models_trained_on_it: list[str] = PField(..., description="Registry models trained on the "
                                                              "erased words (example memory)")


class CustomerExport(ApiModel):
    """What the product keeps about one conversation: the customer's right of access."""

    session_id: str
    entries: list[TranscriptEntry]
    feedback: list[FeedbackRead]
    review_items: list[ReviewItemRead]
    training_examples: list[TrainingExampleRead]


class Retention(ApiModel):
    days: int | None = PField(..., ge=1, le=36500,
                              description="Erase conversations older than this; null: keep.")

    class Config:
        extra = "forbid"


class TurnFilters:
    """Filters on the conversation's customer messages and ratings, shared by the API's list
    and the console's."""

    def __init__(
        self,
        intent: str | None = Query(None, max_length=100, regex=INTENT_PATTERN,
                                   description="A customer message was classified as this."),
        confidence_below: float | None = Query(
            None, ge=0, le=1, description="A customer message's intent confidence was below "
                                          "this."),
        model_id: str | None = Query(None, min_length=1, max_length=128,
                                     description="A customer message was classified by this "
                                                 "model."),
        rating: Rating | None = Query(None, description="The customer rated an answer so."),
        handed_off: bool | None = Query(None, description="Ever handed to a person (true) or "
                                                          "never (false)."),
    ) -> None:
        self.intent, self.confidence_below, self.model_id = intent, confidence_below, model_id
        self.rating, self.handed_off = rating, handed_off

    def query(self, session: Session) -> dict:
        """The keyword arguments of ``TrackerStore.conversations`` (ratings live here, in the
        admin database, and arrive as a list of conversations)."""
        rated = None
        if self.rating is not None:
            rated = sorted(set(session.exec(select(Feedback.session_id).where(
                Feedback.rating == self.rating.value)).all()))
        return {"intent": self.intent, "confidence_below": self.confidence_below,
                "model_id": self.model_id, "handed_off": self.handed_off, "session_ids": rated}


@router.get("", response_model=Page[ConversationSummary])
def list_conversations(
    *,
    q: str | None = Query(None, min_length=1, max_length=200,
                          description="Text the customer wrote."),
    paused: bool | None = Query(None, description="Waiting for a person now."),
    turns: TurnFilters = Depends(),
    window: Window = Depends(),
    sort: str = sort_param("-last_at", ("last_at", "first_at", "messages")),
    paging: Paging = Depends(),
    session: SessionDep,
    store: TrackerDep,
    _: StaffUser,
) -> dict:
    paused_now = store.paused()
    filters = turns.query(session)
    if paused:
        filters["session_ids"] = [s for s in paused_now if filters["session_ids"] is None
                                  or s in filters["session_ids"]]
    total, rows = store.conversations(q=q, since=window.since, until=window.until, sort=sort,
                                      limit=paging.limit, offset=paging.offset, **filters)
    if paused is False:  # rare filter: done after the query, the total stays approximate
        rows = [r for r in rows if r["session_id"] not in paused_now]
    items = [{**r, "paused": r["session_id"] in paused_now} for r in rows]
    return {"items": items, "total": total, "limit": paging.limit, "offset": paging.offset}


@router.get("/retention", response_model=Retention)
def read_retention(*, session: SessionDep,
                   _: StaffUser) -> dict:
    return {"days": retention.retention_days(session)}


@router.put("/retention", response_model=Retention)
def set_retention(*, body: Retention, session: SessionDep,
                  caller: AdminUser) -> dict:
    """Conversations older than ``days`` are erased hourly (and by ``/purge`` at once)."""
    retention.set_retention_days(session, body.days)
    audit.record(session, caller.name, "conversation.retention", "setting", "retention_days",
                 days=body.days)
    session.commit()
    return {"days": body.days}


@router.post("/purge")
def purge_now(*, session: SessionDep, store: TrackerDep,
              caller: AdminUser) -> dict:
    erased = retention.purge(session, store)
    audit.record(session, caller.name, "conversation.purge", "conversation", None,
                 erased=len(erased))
    session.commit()
    return {"erased": len(erased)}


def transcript_entries(events: list[dict]) -> list[dict]:
    entries = []
    for event in events:
        kind, at = event["type"], from_timestamp(event.get("timestamp"))
        metadata = event.get("metadata") or {}
        if kind == "user":
            intent = (event.get("parse_data") or {}).get("intent") or {}
            entries.append({"kind": "customer", "at": at, "text": event.get("text"),
                            "message_id": event.get("message_id"), "intent": intent.get("name"),
                            "confidence": intent.get("confidence"),
                            "model_id": metadata.get("model_id")})
        elif kind == "bot":
            data = event.get("data") or {}
            custom = unwrap_custom(event)
            entries.append({"kind": "staff" if metadata.get("staff") else "bot", "at": at,
                            "text": event.get("text"), "answer_id": custom.get("answer_id"),
                            "decision": custom.get("decision"),
                            "model_id": metadata.get("model_id"),
                            "buttons": data.get("buttons") or []})
        elif kind in ("pause", "resume"):
            entries.append({"kind": "handoff" if kind == "pause" else "resumed", "at": at})
    return entries


@router.get("/{session_id}", response_model=Transcript)
def read_transcript(*, session_id: str = SessionId, store: TrackerDep,
                    _: StaffUser) -> dict:
    events = store.events(session_id)
    if not events:
        raise not_found("conversation", session_id)
    return {"session_id": session_id, "paused": session_id in store.paused(),
            "entries": transcript_entries(events)}


@router.get("/{session_id}/export", response_model=CustomerExport)
def export_conversation(*, session_id: str = SessionId, session: SessionDep,
                        store: TrackerDep,
                        _: AdminUser) -> dict:
    """One customer's conversation, feedback, review items and the training examples made
    from them, as JSON (to hand over on request, before or instead of an erasure)."""
    events = store.events(session_id)
    feedback = session.exec(select(Feedback).where(Feedback.session_id == session_id)).all()
    items = session.exec(select(ReviewItem).where(ReviewItem.session_id == session_id)).all()
    if not events and not feedback and not items:
        raise not_found("conversation", session_id)
    words = retention.customer_words(session, store, session_id)
    return {"session_id": session_id, "entries": transcript_entries(events),
            "feedback": feedback, "review_items": items,
            "training_examples": retention.derived_examples(session, session_id, words)}


@router.delete("/{session_id}", response_model=Erasure)
def erase_conversation(*, session_id: str = SessionId, session: SessionDep,
                       store: TrackerDep,
                       caller: AdminUser) -> dict:
    """Erase a conversation on the customer's request, with everything derived from their
    words (see ``admin_api/retention.py``); the reply names the models still holding them."""
    counts = retention.erase(session, store, session_id, author=caller.name)
    if not any(counts.values()):
        raise not_found("conversation", session_id)
    audit.record(session, caller.name, "conversation.erase", "conversation", session_id,
                 **counts)
    session.commit()
    return counts
