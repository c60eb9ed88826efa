"""Hand-off: conversations the bot paused for a person, who holds each, staff replies, and
resuming the bot.

The queue and the claims are ``admin_api/handoff.py``'s. Replies and resuming go through Rasa's
HTTP API, which delivers a staff reply to the customer's open widget over socket.io. While a
colleague holds a conversation, nobody else may write into it (409).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import Field as PField
from pydantic import validator

from admin_api import handoff, rasa_client
from admin_api.api.deps import (
    SessionDep,
    StaffUser,
    TrackerDep,
    get_user,
)
from admin_api.core.schema import ApiModel
from admin_api.tracker import TrackerStore
from common import audit

router = APIRouter(prefix="/handoff", tags=["hand-off"])
HELD: dict[int | str, dict[str, Any]] = {
    409: {"description": "A colleague is handling this conversation"}}
UPSTREAM: dict[int | str, dict[str, Any]] = {
    502: {"description": "Rasa is unreachable: nothing was sent; try again"}, **HELD}
SessionId = Path(..., min_length=1, max_length=255)
REPLY_CHANNEL = "socketio"


class Waiting(ApiModel):
    session_id: str
    paused_at: datetime
    last_message: str | None
    intent: str | None
    holder: str | None = PField(None, description="The staff member handling it, if any.")


class Availability(ApiModel):
    """What the bot tells a waiting customer once (``bot/runtime/channels.py`` asks)."""

    staff_online: bool
    next_open: datetime | None
    message: str


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
def handoff_queue(*, session: SessionDep, store: TrackerDep,
                  _: StaffUser) -> list[dict]:
    """Paused conversations, longest waiting first, with who holds each."""
    return [vars(w) for w in handoff.queue(session, store)]


@router.get("/availability", response_model=Availability)
def availability(*, session: SessionDep) -> dict:
    """Whether staff are online, and else when the team is next available (public: the bot
    asks it to acknowledge a waiting customer)."""
    return handoff.acknowledgement(session)


@router.post("/{session_id}/claim", response_model=Waiting, responses=HELD)
def claim(*, session_id: str = SessionId, session: SessionDep, store: TrackerDep,
          caller: StaffUser) -> dict:
    """Take the conversation: one holder at a time (repeat it to keep holding it)."""
    row = handoff.claim(session, store, session_id, get_user(session, caller.user_id))
    audit.record(session, caller.name, "handoff.claim", "conversation", session_id)
    session.commit()
    [waiting] = [w for w in handoff.queue(session, store) if w.session_id == session_id]
    return {**vars(waiting), "holder": row.user_name}


@router.post("/{session_id}/release", status_code=204, responses=HELD)
def release(*, session_id: str = SessionId, session: SessionDep,
            caller: StaffUser) -> None:
    """Put the conversation back in the queue for anyone."""
    handoff.holder_check(session, session_id, caller.user_id)
    handoff.release(session, session_id)
    audit.record(session, caller.name, "handoff.release", "conversation", session_id)
    session.commit()


def _paused(store: TrackerStore, session_id: str) -> None:
    handoff.require_waiting(store, session_id)


@router.post("/{session_id}/reply", status_code=202, responses=UPSTREAM)
def reply(*, body: StaffReply, session_id: str = SessionId, session: SessionDep,
          store: TrackerDep,
          caller: StaffUser) -> dict:
    """Send a staff message to the customer (live in their widget); the bot stays paused."""
    _paused(store, session_id)
    handoff.holder_check(session, session_id, caller.user_id)
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
    handoff.holder_check(session, session_id, caller.user_id)
    try:
        # The listen marks a clean turn boundary: messages the customer sent while paused got
        # no bot action, and without it Rasa's rules would not match the next message.
        rasa_client.append_events(session_id, [{"event": "resume"},
                                               {"event": "action", "name": "action_listen"}])
    except rasa_client.RasaUnavailable as error:
        raise HTTPException(502, str(error)) from None
    handoff.release(session, session_id)
    audit.record(session, caller.name, "handoff.resume", "conversation", session_id)
    session.commit()
    return {"status": "resumed"}
