"""Rasa's REST and socket.io input channels, guarded: customer text is masked before Rasa sees
(and stores) it, and an oversize message is refused with a polite reply instead of being
processed.

The channels keep Rasa's names (``rest``, ``socketio``), URLs and socket.io events, so the
protocol is Rasa's own and any Rasa chat widget works against them; ``credentials.yml``
names these classes (see ``bot/runtime.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput

from bot import settings
from nlu.privacy import mask_sensitive

TOO_LONG_REPLY = (
    "Sorry, that message is too long for me ({length} characters; the limit is {limit}). "
    "Could you say it in fewer words?"
)
Handler = Callable[[UserMessage], Awaitable[Any]]


def guard(on_new_message: Handler) -> Handler:
    async def handle(message: UserMessage) -> Any:
        text = message.text or ""
        limit = settings.max_message_chars()
        if len(text) > limit:
            await message.output_channel.send_text_message(
                message.sender_id, TOO_LONG_REPLY.format(length=len(text), limit=limit))
            return None
        message.text = mask_sensitive(text)
        return await on_new_message(message)

    return handle


class GuardedRestInput(RestInput):
    """``POST /webhooks/rest/webhook``, with masking and the length limit."""

    def blueprint(self, on_new_message: Handler) -> Any:
        return super().blueprint(guard(on_new_message))


class GuardedSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel (``user_uttered`` / ``bot_uttered``), with masking and the
    length limit."""

    def blueprint(self, on_new_message: Handler) -> Any:
        blueprint = super().blueprint(guard(on_new_message))
        origins = settings.cors_origins()
        if origins and self.sio is not None:
            # Rasa creates its server with origin checks off; browsers from other sites must
            # not be able to open a customer's conversation.
            self.sio.eio.cors_allowed_origins = origins
        return blueprint
