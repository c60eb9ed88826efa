"""Rasa's action calls without their waste: responses are validated as Rasa validates them
(the same errors) with the schema checked once, and calls reuse one kept-alive connection
instead of opening one per call, still getting through when the server closes one."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from bot.runtime import rasa_patches


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
    rasa_patches.install()
    rasa_patches.install()  # idempotent
    replies, peers = asyncio.run(_calls(6))
    assert [r["echo"] for r in replies] == list(range(6))
    assert len(peers) == 1


def test_a_connection_the_server_closes_is_replaced() -> None:
    rasa_patches.install()
    replies, peers = asyncio.run(_calls(6, close_after=2))
    assert [r["echo"] for r in replies] == list(range(6))
    assert len(peers) == 3


def test_rasas_own_session_opens_a_connection_per_call() -> None:
    """What the patch removes (the baseline the benchmark compares with)."""
    rasa_patches.install()
    original = getattr(EndpointConfig, rasa_patches._ORIGINAL_SESSION)
    patched = EndpointConfig.session
    EndpointConfig.session = original  # type: ignore[method-assign]
    try:
        _replies, peers = asyncio.run(_calls(4))
    finally:
        EndpointConfig.session = patched  # type: ignore[method-assign]
    assert len(peers) == 4


RESPONSES = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "card", "value": "1234"}],
     "responses": [{"text": "Done.", "buttons": [], "custom": {"data": {"answer_id": 3}}}]},
    {"events": [{"event": "action_execution_rejected", "name": "action_answer"}]},
    {},
]
BAD = [
    {"events": [{"event": "no_such_event"}]},
    {"events": "not a list"},
    {"responses": [{"text": 12}], "events": [{"event": "slot"}]},
    {"events": [{"event": "slot", "name": 5}]},
]


def test_action_responses_are_validated_as_rasa_validates_them() -> None:
    rasa_patches.install()
    action = RemoteAction("action_answer", None)
    original = getattr(RemoteAction, rasa_patches._ORIGINAL_VALIDATION)
    for response in RESPONSES:
        assert action._validate_action_result(response) is True
        assert original(action, response) is True
    for response in BAD:
        with pytest.raises(ValidationError) as ours:
            action._validate_action_result(response)
        with pytest.raises(ValidationError) as rasas:
            original(action, response)
        assert ours.value.message == rasas.value.message, response
        assert "Failed to validate Action server response" in ours.value.message
