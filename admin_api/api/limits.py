"""Limits: a request-body size enforced while bytes arrive (so a huge body is never
buffered), and a per-client rate for the public endpoints."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.ratelimit import Buckets, token_buckets


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
    """Requests per minute per client address (``common.ratelimit``: a burst of a quarter of
    the minute's allowance, refilled continuously, bounded memory). The address is the TCP
    peer's: uvicorn trusts ``X-Forwarded-For`` only from ``HELPDESK_TRUSTED_PROXIES`` (serve
    passes it as ``--forwarded-allow-ips``), so a client cannot pick its own address. Buckets
    are shared through Redis when ``HELPDESK_REDIS_URL`` is set (several API workers or
    machines enforce one limit), and live in this process otherwise."""

    def __init__(self, name: str, per_minute: Callable[[], int]) -> None:
        self.name = name
        self.per_minute = per_minute
        self.lock = threading.Lock()

    def _buckets(self, request: Request, rate: int) -> Buckets:
        with self.lock:
            key = f"rate_{self.name}"
            buckets: Buckets | None = getattr(request.app.state, key, None)
            if buckets is None or buckets.per_minute != rate:
                buckets = token_buckets(f"api-{self.name}", rate)
                setattr(request.app.state, key, buckets)
            return buckets

    def __call__(self, request: Request) -> None:
        rate = self.per_minute()
        if rate <= 0:
            return
        client = request.client.host if request.client else "unknown"
        wait = self._buckets(request, rate).take(client)
        if wait > 0:
            raise HTTPException(429, "too many requests; slow down",
                                headers={"Retry-After": str(max(1, round(wait)))})
