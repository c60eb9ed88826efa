"""Limits: a request-body size enforced while bytes arrive (so a huge body is never
buffered), and a per-client rate for the public endpoints."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Answers 413 when a body is larger than ``max_bytes`` (by header or by counting)."""

    def __init__(self, app: ASGIApp, max_bytes: int,
                 per_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = per_path or {}

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {"detail": f"request body is larger than the limit of {limit} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope.get("path", ""), self.max_bytes)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send, limit)


class RateLimit:
    """Requests per minute per client address, as a token bucket (a burst of a quarter of
    the minute's allowance, refilled continuously). Buckets live on the app, in-process: with
    several API workers each enforces the limit on its own."""

    def __init__(self, name: str, per_minute: Callable[[], int]) -> None:
        self.name = name
        self.per_minute = per_minute
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> None:
        rate = self.per_minute()
        if rate <= 0:
            return
        capacity = max(1.0, rate / 4)
        client = request.client.host if request.client else "unknown"
        now = time.monotonic()
        with self.lock:
            state, key = request.app.state, f"rate_{self.name}"
            buckets: dict[str, tuple[float, float]] | None = getattr(state, key, None)
            if buckets is None:
                buckets = {}
                setattr(state, key, buckets)
            tokens, last = buckets.get(client, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate / 60)
            if tokens < 1:
                wait = (1 - tokens) * 60 / rate
                raise HTTPException(429, "too many requests; slow down",
                                    headers={"Retry-After": str(max(1, round(wait)))})
            buckets[client] = (tokens - 1, now)
            if len(buckets) > 100_000:  # forget idle clients rather than grow forever
                for key in [k for k, v in buckets.items() if now - v[1] > 60]:
                    del buckets[key]
