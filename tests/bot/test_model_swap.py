"""Hot swap in the running product: a promotion and a rollback through the admin API reach
the running Rasa server by its own pulls, while a customer keeps chatting: no request fails,
no reply waits longer than the bound, the conversation goes on, and each message is
attributed to the model that answered it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from tests.conftest import Served, sid

pytestmark = pytest.mark.slow
MAX_REPLY_SECONDS = 2.0


class Chatter(threading.Thread):
    """A customer sending messages back to back, recording each reply's delay."""

    def __init__(self, served: Served) -> None:
        super().__init__(daemon=True)
        self.served, self.stop = served, threading.Event()
        self.delays: list[float] = []
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                started = time.perf_counter()
                try:
                    reply = client.post(f"{self.served.rasa}/webhooks/rest/webhook",
                                        json={"sender": sid("swap-customer"),
                                              "message": "my card still has not arrived"})
                    if reply.status_code != 200 or not reply.json():
                        self.failures.append(f"{reply.status_code} {reply.text[:200]}")
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                self.delays.append(time.perf_counter() - started)


def _serving(served: Served) -> str | None:
    token = (served.var_dir / "secrets" / "rasa_token").read_text().strip()
    return httpx.get(f"{served.rasa}/status", params={"token": token}, timeout=10).json().get(
        "model_id")


def _wait_for_model(served: Served, model_id: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while _serving(served) != model_id:
        assert time.monotonic() < deadline, f"Rasa never swapped to {model_id}"
        time.sleep(0.2)


def test_promote_and_rollback_swap_models_with_no_failed_or_slow_reply(
        serve: Callable[..., Served], other_tiny_model: Path) -> None:
    from common.db import get_engine
    from learning import registry

    # The chatter sends back to back, faster than any person: the channel's limits are off.
    served = serve(HELPDESK_SENDER_MESSAGES_PER_MINUTE="0",
                   HELPDESK_ADDRESS_MESSAGES_PER_MINUTE="0")
    headers = {"Authorization": f"Bearer {served.admin_token()}"}
    first = _serving(served)
    assert first is not None
    with Session(get_engine(f"sqlite:///{served.var_dir / 'admin.db'}")) as session:
        second = registry.register(session, other_tiny_model)
        session.commit()
        second_key, second_id = second.id, second.model_id
    assert second_id != first

    # One turn first: the first answer of a fresh server warms the retriever and the models,
    # which is not the swap this test bounds.
    served.say("swap-warm-up", "my card still has not arrived")
    chatter = Chatter(served)
    chatter.start()
    try:
        time.sleep(2)
        promoted = httpx.post(f"{served.api}/api/v1/models/{second_key}/promote",
                              headers=headers, timeout=10)
        assert promoted.status_code == 200, promoted.text
        _wait_for_model(served, second_id)
        time.sleep(3)
        rolled = httpx.post(f"{served.api}/api/v1/models/rollback", headers=headers, timeout=10)
        assert rolled.status_code == 200 and rolled.json()["model_id"] == first
        _wait_for_model(served, first)
        time.sleep(3)
    finally:
        chatter.stop.set()
        chatter.join(30)
    assert chatter.failures == []
    assert len(chatter.delays) > 20
    assert max(chatter.delays) < MAX_REPLY_SECONDS, sorted(chatter.delays)[-5:]

    summary = httpx.get(f"{served.api}/api/v1/metrics/summary", headers=headers,
                        timeout=30).json()
    per_model = {row["model_id"]: row["messages"] for row in summary["per_model"]}
    assert per_model.get(first, 0) > 0 and per_model.get(second_id, 0) > 0, per_model
    transcript = httpx.get(f"{served.api}/api/v1/conversations/{sid('swap-customer')}",
                           headers=headers, timeout=30).json()
    models_in_one_conversation = {e["model_id"] for e in transcript["entries"]
                                  if e["kind"] == "customer"}
    assert {first, second_id} <= models_in_one_conversation  # one conversation, kept across
