"""Conversations, read from Rasa's tracker store: list and search, transcripts with what the
bot understood and answered per turn, erasure on request, and the retention period."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Path, Query
from pydantic import Field as PField
from sqlmodel import Session

from admin_api import audit, retention
from admin_api.api.deps import Caller, get_session, get_tracker, require_admin, require_staff
from admin_api.api.paging import Page, Paging, Window, not_found, sort_param
from admin_api.core.schema import ApiModel
from admin_api.tracker import TrackerStore, from_timestamp, unwrap_custom

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])
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


class Retention(ApiModel):
    days: int | None = PField(..., ge=1, le=36500,
                              description="Erase conversations older than this; null: keep.")

    class Config:
        extra = "forbid"


@router.get("", response_model=Page[ConversationSummary])
def list_conversations(
    q: str | None = Query(None, min_length=1, max_length=200,
                          description="Text the customer wrote."),
    paused: bool | None = None,
    window: Window = Depends(),
    sort: str = sort_param("-last_at", ("last_at", "first_at", "messages")),
    paging: Paging = Depends(),
    store: TrackerStore = Depends(get_tracker),
    _: Caller = Depends(require_staff),
) -> dict:
    paused_now = store.paused()
    only = list(paused_now) if paused else None
    total, rows = store.conversations(q=q, since=window.since, until=window.until,
                                      session_ids=only, sort=sort, limit=paging.limit,
                                      offset=paging.offset)
    if paused is False:  # rare filter: done after the query, the total stays approximate
        rows = [r for r in rows if r["session_id"] not in paused_now]
    items = [{**r, "paused": r["session_id"] in paused_now} for r in rows]
    return {"items": items, "total": total, "limit": paging.limit, "offset": paging.offset}


@router.get("/retention", response_model=Retention)
def read_retention(session: Session = Depends(get_session),
                   _: Caller = Depends(require_staff)) -> dict:
    return {"days": retention.retention_days(session)}


@router.put("/retention", response_model=Retention)
def set_retention(body: Retention, session: Session = Depends(get_session),
                  caller: Caller = Depends(require_admin)) -> dict:
    """Conversations older than ``days`` are erased hourly (and by ``/purge`` at once)."""
    retention.set_retention_days(session, body.days)
    audit.record(session, caller.name, "conversation.retention", "setting", "retention_days",
                 days=body.days)
    session.commit()
    return {"days": body.days}


@router.post("/purge")
def purge_now(session: Session = Depends(get_session), store: TrackerStore = Depends(get_tracker),
              caller: Caller = Depends(require_admin)) -> dict:
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
def read_transcript(session_id: str = SessionId, store: TrackerStore = Depends(get_tracker),
                    _: Caller = Depends(require_staff)) -> dict:
    events = store.events(session_id)
    if not events:
        raise not_found("conversation", session_id)
    return {"session_id": session_id, "paused": session_id in store.paused(),
            "entries": transcript_entries(events)}


@router.delete("/{session_id}")
def erase_conversation(session_id: str = SessionId, session: Session = Depends(get_session),
                       store: TrackerStore = Depends(get_tracker),
                       caller: Caller = Depends(require_admin)) -> dict:
    """Erase a conversation on the customer's request, with its feedback and review items."""
    counts = retention.erase(session, store, session_id)
    if not any(counts.values()):
        raise not_found("conversation", session_id)
    audit.record(session, caller.name, "conversation.erase", "conversation", session_id,
                 **counts)
    session.commit()
    return counts
