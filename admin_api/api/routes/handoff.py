"""Hand-off: conversations the bot paused for a person, staff replies, and resuming the bot.

The queue is read from the tracker store (``ConversationPaused`` events with no later
``ConversationResumed``). Replies and resuming go through Rasa's HTTP API, which delivers a
staff reply to the customer's open widget over socket.io.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import Field as PField
from pydantic import validator

from admin_api import rasa_client
from admin_api.api.deps import (
    SessionDep,
    StaffUser,
    TrackerDep,
)
from admin_api.core.schema import ApiModel
from admin_api.tracker import TrackerStore
from common import audit

router = APIRouter(prefix="/handoff", tags=["hand-off"])
UPSTREAM: dict[int | str, dict[str, Any]] = {
    502: {"description": "Rasa is unreachable: nothing was sent; try again"}}
SessionId = Path(..., min_length=1, max_length=255)
REPLY_CHANNEL = "socketio"


class Waiting(ApiModel):
    session_id: str
    paused_at: datetime
    last_message: str | None
    intent: str | None


class StaffReply(ApiModel):
    text: str = PField(..., min_length=1, max_length=4000)

    class Config:
        extra = "forbid"

    @validator("text")
    def _text(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("text must not be blank")
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        return value


@router.get("", response_model=list[Waiting])
def handoff_queue(*, store: TrackerDep,
                  _: StaffUser) -> list[dict]:
    """Paused conversations, longest waiting first."""
    waiting = []
    for session_id, paused_at in sorted(store.paused().items(), key=lambda kv: kv[1]):
        turns = store.turns(session_id=session_id)
        last = turns[-1] if turns else None
        waiting.append({"session_id": session_id, "paused_at": paused_at,
                        "last_message": last.text if last else None,
                        "intent": last.intent if last else None})
    return waiting


def _paused(store: TrackerStore, session_id: str) -> None:
    if session_id not in store.paused():
        raise HTTPException(404, f"conversation {session_id} is not waiting for a person")


@router.post("/{session_id}/reply", status_code=202, responses=UPSTREAM)
def reply(*, body: StaffReply, session_id: str = SessionId, session: SessionDep,
          store: TrackerDep,
          caller: StaffUser) -> dict:
    """Send a staff message to the customer (live in their widget); the bot stays paused."""
    _paused(store, session_id)
    # The payload lets our widget show the message as the support team's (other widgets
    # show the text); the metadata keeps it out of the bot's turns in the metrics.
    event = {"event": "bot", "text": body.text, "metadata": {"staff": caller.name},
             "data": {"custom": {"data": {"staff": caller.name}}}}
    try:
        rasa_client.append_events(session_id, [event], deliver_to=REPLY_CHANNEL)
    except rasa_client.RasaUnavailable as error:
        raise HTTPException(502, str(error)) from None
    audit.record(session, caller.name, "handoff.reply", "conversation", session_id,
                 characters=len(body.text))
    session.commit()
    return {"status": "sent"}


@router.post("/{session_id}/resume", status_code=202, responses=UPSTREAM)
def resume(*, session_id: str = SessionId, session: SessionDep,
           store: TrackerDep,
           caller: StaffUser) -> dict:
    """Hand the conversation back to the bot."""
    _paused(store, session_id)
    try:
        # The listen marks a clean turn boundary: messages the customer sent while paused got
        # no bot action, and without it Rasa's rules would not match the next message.
        rasa_client.append_events(session_id, [{"event": "resume"},
                                               {"event": "action", "name": "action_listen"}])
    except rasa_client.RasaUnavailable as error:
        raise HTTPException(502, str(error)) from None
    audit.record(session, caller.name, "handoff.resume", "conversation", session_id)
    session.commit()
    return {"status": "resumed"}
