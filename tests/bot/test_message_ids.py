"""Client message ids (``bot/runtime/message_ids.py``): a resend is recognised, in this process
and through the machines' real Redis (where any instance may get it)."""

from __future__ import annotations

import uuid

import pytest

from bot.runtime.message_ids import MessageIds, Receipt, valid


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "redis"])
def test_a_message_is_processed_once_and_a_failed_turn_frees_its_id(
        shared: bool, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_url") if shared else ""
    first, second = MessageIds(url), MessageIds(url) if shared else None
    other = second or first  # with Redis, another instance sees the same marks
    conversation, message = uuid.uuid4().hex, "m-1"
    assert first.begin(conversation, message) is Receipt.new
    assert other.begin(conversation, message) is Receipt.in_flight  # being processed
    first.finish(conversation, message, done=True)
    assert other.begin(conversation, message) is Receipt.duplicate
    assert other.begin(uuid.uuid4().hex, message) is Receipt.new  # ids are per conversation
    # A turn that failed (Rasa raised) may not have stored it: a resend is processed.
    assert first.begin(conversation, "m-2") is Receipt.new
    first.finish(conversation, "m-2", done=False)
    assert other.begin(conversation, "m-2") is Receipt.new


def test_without_redis_the_message_is_processed() -> None:
    down = MessageIds("redis://127.0.0.1:1/0", timeout=0.5)
    assert down.begin("c", "m") is Receipt.new
    assert down.begin("c", "m") is Receipt.new  # no marks: processed, as without an id


@pytest.mark.parametrize("message_id,ok", [("a1_b-2.c:3", True), ("x" * 64, True),
                                           ("", False), ("x" * 65, False), ("a b", False),
                                           (42, False), ("é", False)])
def test_ids_are_short_plain_strings(message_id: object, ok: bool) -> None:
    assert valid(message_id) is ok
