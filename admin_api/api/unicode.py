"""Refuses JSON bodies whose strings are not Unicode text.

JSON may spell a lone UTF-16 surrogate (``"\\ud800"``); Python parses it into a ``str`` that
no database driver, log or UTF-8 encoder accepts, so it used to surface as a 500 wherever the
text was first written. No field of this API can use one, so the whole body is refused up
front with a 422 naming the field, before any route sees it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A \uD800-\uDFFF escape; only bodies that spell one are parsed here.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _bad_text(value: Any, location: list[str | int]) -> list[str | int] | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return location
        return None
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return None
    for key, item in items:
        found = _bad_text(key, [*location, key]) if isinstance(key, str) else None
        found = found or _bad_text(item, [*location, key])
        if found is not None:
            return found
    return None


class UnicodeGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or b"json" not in dict(scope.get("headers") or []).get(
                b"content-type", b""):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        location = None
        if _SURROGATE_ESCAPE.search(body):
            try:
                location = _bad_text(json.loads(body), ["body"])
            except ValueError:
                location = None  # not JSON: FastAPI answers 400 for it
        if location is not None:
            await _reject(send, location)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _reject(send: Send, location: list[str | int]) -> None:
    detail = [{"loc": location, "type": "value_error.unicode",
               "msg": "text must be valid Unicode (a lone UTF-16 surrogate is not)"}]
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 422,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
