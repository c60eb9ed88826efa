"""Client message ids: a message sent again is recognised and not processed twice.

A widget that lost its connection, or a REST client that got no answer, cannot know whether
its message was stored, so it sends it again with the same ``message_id``. Each id moves
through two marks per conversation: *in flight* while a turn processes it (expiring after
``IN_FLIGHT_SECONDS``, so a resend after an instance died mid-turn is processed by another)
and *done* once the turn ended (kept ``DONE_SECONDS``). A resend of a done message is
acknowledged without being processed again; one still in flight is told to wait. The marks
live in Redis when ``HELPDESK_REDIS_URL`` is set (any instance may get the resend), in this
process otherwise (bounded, like the rate limits). Redis being away must not silence
customers: the message is then processed, as it would be without an id.

The one window left: an instance killed after Rasa stored the turn but before the *done*
mark leaves the id to lapse from *in flight*, and a resend after that is processed again.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from contextvars import ContextVar
from enum import Enum

from common.redis_client import AwayWarning, connect

logger = logging.getLogger(__name__)

ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
METADATA_KEY = "client_message_id"  # where the channels put it, and the tracker keeps it
IN_FLIGHT_SECONDS = 60
DONE_SECONDS = 86400
MAX_LOCAL = 200_000


class Receipt(str, Enum):
    new = "new"  # process it
    duplicate = "duplicate"  # processed before: acknowledge only
    in_flight = "in_flight"  # another turn is processing it now
    refused = "refused"  # not processed (too long): the customer was told why


# What the channel's guard decided for the message it just handled (the socket.io handler,
# which awaits the guard in the same task, reads it to acknowledge).
last_receipt: ContextVar[Receipt | None] = ContextVar("last_receipt", default=None)


class MessageIds:
    def __init__(self, redis_url: str = "", timeout: float = 5.0) -> None:
        self._client = connect(redis_url, timeout) if redis_url else None
        self._local: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._warn = AwayWarning(logger, "client message ids not checked")

    @staticmethod
    def _key(session_id: str, message_id: str) -> str:
        return f"helpdesk:msg:{session_id}:{message_id}"

    def begin(self, session_id: str, message_id: str) -> Receipt:
        key = self._key(session_id, message_id)
        if self._client is not None:
            import redis

            try:
                if self._client.set(key, "in_flight", nx=True, ex=IN_FLIGHT_SECONDS):
                    return Receipt.new
                seen = self._client.get(key)
                return Receipt.duplicate if seen == b"done" else Receipt.in_flight
            except redis.RedisError as error:
                self._warn(error)
                return Receipt.new
        now = time.monotonic()
        with self._lock:
            state, expires = self._local.get(key, ("", 0.0))
            if state and expires > now:
                return Receipt.duplicate if state == "done" else Receipt.in_flight
            self._local[key] = ("in_flight", now + IN_FLIGHT_SECONDS)
            self._local.move_to_end(key)
            while len(self._local) > MAX_LOCAL:
                self._local.popitem(last=False)
            return Receipt.new

    def finish(self, session_id: str, message_id: str, done: bool) -> None:
        """The turn ended (``done``: the message was handled) or failed before storing it
        (the id is freed, so a resend is processed)."""
        key = self._key(session_id, message_id)
        if self._client is not None:
            import redis

            try:
                if done:
                    self._client.set(key, "done", ex=DONE_SECONDS)
                else:
                    self._client.delete(key)
            except redis.RedisError as error:
                self._warn(error)
            return
        with self._lock:
            if done:
                self._local[key] = ("done", time.monotonic() + DONE_SECONDS)
            else:
                self._local.pop(key, None)


def valid(message_id: object) -> bool:
    return isinstance(message_id, str) and bool(ID.match(message_id))
