"""Rasa's HTTP API, as the admin API uses it: hand-off replies and resuming the bot, and the
console's "Try it" (``/model/parse``, so staff see what the served model and its fallback
classifier make of a question).

Events go through Rasa (not into the tracker store directly) so that Rasa's lock on the
conversation is respected and its socket.io channel delivers a staff reply to the customer's
open widget.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx
import jwt

from common.config import get_settings

TIMEOUT = 10.0
JWT_LIFETIME = 60  # seconds: a captured header is worthless a minute later


def auth_header(secret: str) -> dict[str, str]:
    """Rasa's HTTP API accepts a JWT signed with its secret (``bot/runtime/rasa_server.py``
    starts it so): the secret stays in a header, never in a URL that proxies and access logs
    record."""
    now = int(time.time())
    claims = {"user": {"username": "helpdesk-admin-api", "role": "admin"},
              "iat": now, "exp": now + JWT_LIFETIME}
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm='HS256')}"}


class RasaUnavailable(RuntimeError):
    """Rasa could not be reached or refused the request; the message says which."""


def append_events(session_id: str, events: list[dict[str, Any]],
                  deliver_to: str | None = None) -> None:
    """Append events to a conversation; with ``deliver_to`` (an input channel name such as
    ``socketio``), bot messages among them are also sent to the customer on that channel."""
    settings = get_settings()
    params: dict[str, str] = {}
    if deliver_to:
        params.update({"execute_side_effects": "true", "output_channel": deliver_to})
    conversation = quote(session_id, safe="")
    url = f"{settings.rasa_url.rstrip('/')}/conversations/{conversation}/tracker/events"
    try:
        reply = httpx.post(url, params=params, json=events, timeout=TIMEOUT,
                           headers=auth_header(settings.resolved_rasa_token))
    except httpx.HTTPError as error:
        raise RasaUnavailable(f"Rasa at {settings.rasa_url} is unreachable: {error}") from None
    if reply.status_code != 200:
        raise RasaUnavailable(f"Rasa refused the events ({reply.status_code}): "
                              f"{reply.text[:300]}")


def _call(method: str, path: str, **kwargs: Any) -> Any:
    settings = get_settings()
    url = f"{settings.rasa_url.rstrip('/')}{path}"
    try:
        headers = {**auth_header(settings.resolved_rasa_token), "Accept": "application/json"}
    except jwt.InvalidKeyError:
        raise RasaUnavailable("no token for Rasa's HTTP API (is `helpdesk serve` running?)") \
            from None
    try:
        reply = httpx.request(method, url, timeout=TIMEOUT, headers=headers, **kwargs)
    except httpx.HTTPError as error:
        raise RasaUnavailable(f"Rasa at {settings.rasa_url} is unreachable: {error}") from None
    if reply.status_code != 200:
        raise RasaUnavailable(f"Rasa refused the request ({reply.status_code}): "
                              f"{reply.text[:300]}")
    return reply.json()


def parse(text: str) -> dict[str, Any]:
    """The served model's reading of ``text``: ``intent``, ``intent_ranking``, entities."""
    return _call("POST", "/model/parse", json={"text": text})


def intents() -> list[str]:
    """The served model's intents, from its domain."""
    domain = _call("GET", "/domain")
    names = []
    for entry in domain.get("intents") or []:
        names.append(next(iter(entry)) if isinstance(entry, dict) else str(entry))
    return sorted(names)
