"""Rasa's calls to the action server reuse one kept-alive connection instead of opening one
per call, and still get through when the server closes a connection."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

from bot.runtime import keep_alive


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _calls(count: int, close_after: int | None = None) -> tuple[list[dict], set[int]]:
    peers: set[int] = set()
    seen = 0

    async def webhook(request: web.Request) -> web.Response:
        nonlocal seen
        seen += 1
        peers.add(request.transport.get_extra_info("peername")[1])
        body = await request.json()
        response = web.json_response({"events": [], "responses": [], "echo": body["n"]})
        if close_after is not None and seen % close_after == 0:
            response.force_close()
        return response

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
        replies = [await endpoint.request(json={"n": n}, method="post") for n in range(count)]
    finally:
        await runner.cleanup()
    return replies, peers


def test_action_calls_share_one_connection() -> None:
    keep_alive.install()
    keep_alive.install()  # idempotent
    replies, peers = asyncio.run(_calls(6))
    assert [r["echo"] for r in replies] == list(range(6))
    assert len(peers) == 1


def test_a_connection_the_server_closes_is_replaced() -> None:
    keep_alive.install()
    replies, peers = asyncio.run(_calls(6, close_after=2))
    assert [r["echo"] for r in replies] == list(range(6))
    assert len(peers) == 3


def test_rasas_own_session_opens_a_connection_per_call() -> None:
    """What the patch removes (the baseline the benchmark compares with)."""
    keep_alive.install()
    original = getattr(EndpointConfig, keep_alive._ORIGINAL_SESSION)
    patched = EndpointConfig.session
    EndpointConfig.session = original  # type: ignore[method-assign]
    try:
        _replies, peers = asyncio.run(_calls(4))
    finally:
        EndpointConfig.session = patched  # type: ignore[method-assign]
    assert len(peers) == 4
