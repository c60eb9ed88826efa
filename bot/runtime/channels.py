"""Rasa's REST and socket.io input channels, guarded: customer text is masked before Rasa sees
(and stores) it, an oversize message is refused with a polite reply instead of being
processed, a customer writing while their conversation waits for a person is acknowledged once
(with when the team is next available if nobody is online), a turn that produced no reply at
all (the action server down: Rasa logs the failure and says nothing) gets an apology instead
of silence, a malformed request (a message that is not text, a body over the size limit) is a
400 or 413 with a message instead of an exception inside Rasa, client metadata is cut to a
short allow-list (never ``model_id``, which per-model figures read) before Rasa stores it, a
conversation or an address that sends faster than a person types gets a polite "slow down"
instead of an answer (``common.ratelimit``; a 429 with Retry-After on REST), and a message
sent again with the same client ``message_id`` is not processed twice
(``bot/runtime/message_ids.py``; socket.io acknowledges each message once it is stored).

The channels keep Rasa's names (``rest``, ``socketio``), URLs and socket.io events, so the
protocol is Rasa's own and any Rasa chat widget works against them; ``credentials.yml``
names these classes (see ``bot/runtime/rasa_config.py``).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput
from rasa.shared.core.events import BotUttered, ConversationPaused
from sanic import response
from sanic.request import Request

from bot.runtime import model_swap
from bot.runtime.message_ids import METADATA_KEY, MessageIds, Receipt, last_receipt, valid
from common.config import get_settings
from common.ratelimit import token_buckets
from nlu.privacy import mask_sensitive

model_swap.install()

FAILURE_REPLY = (
    "Sorry, something went wrong on my side and I couldn't answer that. Please try again in a "
    "moment, or ask for a person."
)
TOO_LONG_REPLY = (
    "Sorry, that message is too long for me ({length} characters; the limit is {limit}). "
    "Could you say it in fewer words?"
)
UNREADABLE_REPLY = "Sorry, I could not read that message. Please type your question as text."
WEAK_ID_REPLY = ("Sorry, this chat's conversation id is not valid. Please reload the page to "
                 "start a new conversation.")
SLOW_DOWN_REPLY = ("You're sending messages faster than I can read them. Please wait a few "
                   "seconds and try again.")
WAITING_REPLY = "Thanks, a colleague will reply here shortly."
ACK_MARK = "handoff_ack"
ACK_TIMEOUT = 3.0
METADATA_VALUE_MAX = 200
Handler = Callable[[UserMessage], Awaitable[Any]]
logger = logging.getLogger(__name__)


def allowed_metadata(metadata: object) -> dict[str, str]:
    """The client's metadata cut to the configured keys with short string values."""
    if not isinstance(metadata, dict):
        return {}
    kept = {key: value for key in get_settings().channel_metadata_key_list
            if isinstance(value := metadata.get(key), str) and len(value) <= METADATA_VALUE_MAX}
    if valid(metadata.get(METADATA_KEY)):  # put there by the channels from ``message_id``
        kept[METADATA_KEY] = metadata[METADATA_KEY]
    return kept


class ChannelLimits:
    """Per conversation and per address (``common.ratelimit``: in Redis, shared by every Rasa
    instance, when one is configured)."""

    def __init__(self) -> None:
        sender_rate, address_rate = (get_settings().sender_messages_per_minute,
                                     get_settings().address_messages_per_minute)
        self.by_sender = token_buckets("sender", sender_rate, burst=max(1.0, sender_rate / 3))
        self.by_address = token_buckets("address", address_rate,
                                        burst=max(1.0, address_rate / 5))

    def wait(self, sender: str, address: str) -> float:
        """0 when the message may go on, else the seconds to wait."""
        return max(self.by_sender.take(sender), self.by_address.take(address))


_HEX_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_TOKEN_ID = re.compile(r"^[A-Za-z0-9_-]{22,128}$")
WEAK_ID = ("must be an unguessable conversation id: a UUID (as Rasa's own channel and the common "
           "widgets make them) or at least 22 random characters of A-Z, a-z, 0-9, '-' and '_'")


def unguessable(session_id: str) -> bool:
    """Whether a client-chosen conversation id has at least a UUID4's 122 random bits.

    Whoever knows a conversation's id can write into it and read its replies, so a short or
    patterned id ("user1", "0000...") is refused. Accepted: a UUID with or without dashes, as
    Rasa (``uuid4().hex``) and the common Rasa widgets make them, or 22 to 128 URL-safe
    characters (132 bits and up); either with enough distinct characters to be random."""
    compact = session_id.replace("-", "") if len(session_id) == 36 else session_id
    if _HEX_ID.match(compact):
        return len(set(compact.lower())) >= 8
    return bool(_TOKEN_ID.match(session_id)) and len(set(session_id)) >= 12


def client_address(request: Any) -> str:
    """The customer's address: the peer's, or behind the scaled profile's proxy the one it
    forwarded (Sanic believes ``X-Forwarded-For`` only with ``SANIC_PROXIES_COUNT`` set, which
    ``helpdesk serve`` sets for Rasa behind its proxy), so a proxy's customers do not share
    one address's rate limit."""
    if request is None:
        return "unknown"
    return str(getattr(request, "remote_addr", "") or getattr(request, "ip", "") or "unknown")


def malformed(body: object) -> str | None:
    """Why a REST webhook body cannot be a customer message, or None when it can."""
    if not isinstance(body, dict):
        return "the body must be a JSON object with 'sender' and 'message'"
    sender = body.get("sender")
    if not isinstance(sender, str) or not unguessable(sender):
        return f"'sender' {WEAK_ID}"
    if not isinstance(body.get("message"), str):
        return "'message' must be a string"
    if body.get("metadata") is not None and not isinstance(body.get("metadata"), dict):
        return "'metadata' must be a JSON object"
    if body.get("message_id") is not None and not valid(body["message_id"]):
        return MESSAGE_ID
    return None


MESSAGE_ID = ("'message_id' must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '-', '.' and "
              "':' (the client's own id of the message, so that a resend is not processed "
              "twice)")


def guard(on_new_message: Handler) -> Handler:
    ids = MessageIds(get_settings().redis_url, get_settings().redis_timeout)

    async def handle(message: UserMessage) -> Any:
        text = message.text or ""
        limit = get_settings().max_message_chars
        output = message.output_channel
        last_receipt.set(None)
        if len(text) > limit:
            last_receipt.set(Receipt.refused)
            await output.send_text_message(
                message.sender_id, TOO_LONG_REPLY.format(length=len(text), limit=limit))
            return None
        message.text = mask_sensitive(text)
        message.metadata = allowed_metadata(message.metadata)
        client_id = message.metadata.get(METADATA_KEY)
        if client_id:
            receipt = ids.begin(message.sender_id, client_id)
            last_receipt.set(receipt)
            if receipt is not Receipt.new:
                return None  # stored before, or being processed right now: never twice
        done = False
        try:
            result, done = await _answer(on_new_message, message, output)
            return result
        finally:
            if client_id:  # a turn that failed frees the id: a resend is processed
                ids.finish(message.sender_id, client_id, done=done)

    return handle


async def _answer(on_new_message: Handler, message: UserMessage,
                  output: Any) -> tuple[Any, bool]:
    """Rasa's turn, with an apology instead of silence when it produced no reply; and whether
    Rasa handled it (False: it raised, and may not have stored the message)."""
    sent = 0
    send_response = output.send_response

    async def counting_send(recipient_id: str, reply: dict[str, Any]) -> None:
        nonlocal sent
        sent += 1
        await send_response(recipient_id, reply)

    output.send_response = counting_send  # type: ignore[method-assign]
    handled = True
    try:
        result = await on_new_message(message)
    except Exception:  # the customer must hear something either way
        logger.exception("handling a message of %s failed", message.sender_id)
        result, handled = None, False
    if sent == 0:
        agent = _agent(on_new_message)
        if await _paused(agent, message.sender_id):
            await _acknowledge_once(agent, message.sender_id, output)
        else:
            # Typically the action server is down: Rasa logs it and says nothing.
            await output.send_text_message(message.sender_id, FAILURE_REPLY)
    return result, handled


def _agent(on_new_message: Handler) -> Any:
    """Rasa's agent, whose tracker store tells a paused conversation (silence is right) from
    a failed turn (silence is wrong). Rasa passes the channels a closure over its Sanic app
    (``rasa.core.channels.channel.register``); the app's context holds the agent."""
    for cell in getattr(on_new_message, "__closure__", None) or ():
        try:
            agent = getattr(getattr(cell.cell_contents, "ctx", None), "agent", None)
        except ValueError:  # an empty cell
            continue
        if agent is not None:
            return agent
    return None


async def _paused(agent: Any, sender_id: str) -> bool:
    store = getattr(agent, "tracker_store", None)
    if store is None:
        return False
    tracker = await store.retrieve(sender_id)
    return bool(tracker and tracker.is_paused())


async def _availability() -> str:
    """What the admin API says a waiting customer should hear (staff online, or when the
    team is next available); a plain acknowledgement when it cannot be asked."""
    url = f"{get_settings().admin_api_url}/api/v1/handoff/availability"
    try:
        async with httpx.AsyncClient(timeout=ACK_TIMEOUT) as client:
            reply = await client.get(url)
        reply.raise_for_status()
        return str(reply.json()["message"])
    except (httpx.HTTPError, KeyError, ValueError) as error:
        logger.warning("hand-off availability unknown (%s): plain acknowledgement", error)
        return WAITING_REPLY


async def _acknowledge_once(agent: Any, sender_id: str, output: Any) -> None:
    """A customer writing while the conversation waits for a person hears back once per
    hand-off, never the bot's answers: silence would look like a broken chat."""
    store = getattr(agent, "tracker_store", None)
    if store is None:
        return
    tracker = await store.retrieve(sender_id)
    if tracker is None:
        return
    for event in reversed(tracker.events):
        if isinstance(event, ConversationPaused):
            break
        if isinstance(event, BotUttered) and (event.metadata or {}).get(ACK_MARK):
            return
    text = await _availability()
    await output.send_text_message(sender_id, text)
    tracker.update(BotUttered(text, metadata={ACK_MARK: True}))
    await store.save(tracker)


class GuardedRestInput(RestInput):
    """``POST /webhooks/rest/webhook``, with masking, the length limit and checked bodies. A
    body may carry the client's ``message_id``: a resend of a stored message answers an empty
    list instead of being processed again."""

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        metadata = super().get_metadata(request)
        message_id = (request.json or {}).get("message_id")
        if message_id is None:
            return metadata
        return {**(metadata if isinstance(metadata, dict) else {}), METADATA_KEY: message_id}

    def blueprint(self, on_new_message: Handler) -> Any:
        blueprint = super().blueprint(guard(on_new_message))
        limits = ChannelLimits()

        @blueprint.middleware("request")
        async def check_body(request: Request) -> Any:
            if request.method != "POST":
                return None
            limit = get_settings().max_request_bytes
            if len(request.body or b"") > limit:
                return response.json({"error": f"the body is larger than {limit} bytes"},
                                     status=413)
            try:
                body = request.json
            except Exception:  # Sanic raises its own InvalidUsage
                body = None
            reason = malformed(body)
            if reason:
                return response.json({"error": reason}, status=400)
            assert isinstance(body, dict)
            wait = limits.wait(body["sender"], client_address(request))
            if wait > 0:
                return response.json([{"recipient_id": body["sender"], "text": SLOW_DOWN_REPLY}],
                                     status=429, headers={"Retry-After": str(max(1, round(wait)))})
            return None

        return blueprint


def share_rooms(sio: Any, url: str, timeout: float) -> None:
    """Route this server's emits through Redis (python-socketio's ``AsyncRedisManager``), so a
    message for a customer's room (a staff reply sent through any Rasa instance) reaches the
    instance that holds the customer's socket. Rasa builds its server without a manager of
    our choosing; swapping it in before the first connection is what the constructor would
    have done (the manager initialises at the first connection)."""
    import socketio

    # Pub/sub channels are global to a Redis server: name it after the database, as the
    # lock store's and rate limits' keys are kept apart by it.
    database = urlsplit(url).path.strip("/") or "0"
    manager = socketio.AsyncRedisManager(
        url, channel=f"helpdesk-socketio-{database}",
        # No read timeout: the listener waits on the channel for as long as it is quiet.
        redis_options={"socket_connect_timeout": timeout, "health_check_interval": 30})
    sio.manager = manager
    manager.set_server(sio)
    sio.manager_initialized = False


class GuardedSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel (``user_uttered`` / ``bot_uttered``), with masking and the
    length limit."""

    def blueprint(self, on_new_message: Handler) -> Any:
        blueprint = super().blueprint(guard(on_new_message))
        if self.sio is not None:
            self._check_messages(self.sio)
            if get_settings().redis_url:
                share_rooms(self.sio, get_settings().redis_url, get_settings().redis_timeout)
        origins = get_settings().cors_origin_list
        if origins and self.sio is not None:
            # Rasa creates its server with origin checks off; browsers from other sites must
            # not be able to open a customer's conversation, so engine.io refuses their
            # handshakes (polling and websocket alike).
            self.sio.eio.cors_allowed_origins = origins
            # But the CORS headers themselves are Sanic-CORS's (``rasa run --cors``, the same
            # origins): were engine.io to add its own, every polling response would carry
            # Access-Control-Allow-Origin twice, and browsers refuse such a response.
            self.sio.eio._cors_headers = lambda environ: []
        return blueprint

    def _check_messages(self, sio: Any) -> None:
        """Rasa's ``user_uttered`` handler, behind a check: a frame whose message is not text
        gets a polite reply instead of an exception inside Rasa (and no reply at all)."""
        namespace = self.namespace or "/"
        handlers = sio.handlers.get(namespace, {})
        rasa_handler = handlers.get(self.user_message_evt)
        if rasa_handler is None:
            return
        limits = ChannelLimits()
        rasa_session_request = handlers.get("session_request")

        async def session_request(sid: str, data: Any) -> None:
            # A missing, malformed or guessable id gets one the server issues (Rasa's own
            # uuid4 hex), sent back in session_confirm, as Rasa does for a missing one.
            data = data if isinstance(data, dict) else {}
            session_id = data.get("session_id")
            if not isinstance(session_id, str) or not unguessable(session_id):
                data = {**data, "session_id": uuid.uuid4().hex}
            if rasa_session_request is not None:
                await rasa_session_request(sid, data)

        async def checked(sid: str, data: Any) -> dict[str, Any]:
            """The turn; its return value is the acknowledgement a client asks for by
            emitting with a callback, sent once the message is stored and answered."""
            message_id = data.get("message_id") if isinstance(data, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get("message", ""), str) or (
                    data.get("session_id") is not None
                    and not isinstance(data.get("session_id"), str)):
                await sio.emit(self.bot_message_evt, {"text": UNREADABLE_REPLY}, room=sid)
                return {"message_id": None, "status": "refused", "reason": UNREADABLE_REPLY}
            if message_id is not None and not valid(message_id):
                await sio.emit(self.bot_message_evt, {"text": UNREADABLE_REPLY}, room=sid)
                return {"message_id": None, "status": "refused", "reason": MESSAGE_ID}
            if data.get("session_id") and not unguessable(data["session_id"]):
                await sio.emit(self.bot_message_evt, {"text": WEAK_ID_REPLY}, room=sid)
                return {"message_id": message_id, "status": "refused", "reason": WEAK_ID_REPLY}
            # engine.io's Sanic environ says 127.0.0.1 for everyone; the request knows better.
            environ = sio.get_environ(sid, namespace=namespace) or {}
            address = client_address(environ.get("sanic.request"))
            if limits.wait(data.get("session_id") or sid, address):
                await sio.emit(self.bot_message_evt, {"text": SLOW_DOWN_REPLY}, room=sid)
                return {"message_id": message_id, "status": "refused",
                        "reason": SLOW_DOWN_REPLY}
            if message_id is not None:
                metadata = data.get("metadata")
                data = {**data, "metadata": {**(metadata if isinstance(metadata, dict) else {}),
                                             METADATA_KEY: message_id}}
            last_receipt.set(None)
            await rasa_handler(sid, data)
            receipt = last_receipt.get()
            status = "stored" if receipt in (None, Receipt.new) else receipt.value
            return {"message_id": message_id, "status": status}

        handlers[self.user_message_evt] = checked
        handlers["session_request"] = session_request
