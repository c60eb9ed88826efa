"""``helpdesk serve --profile scaled``: two Rasa instances, two action servers and two admin API
workers behind HAProxy (TLS), sharing Redis and PostgreSQL, as real processes.

Each test drives one guarantee of running several instances the way Rasa documents it: a
conversation may move between instances mid-flow, a staff reply reaches a socket held by
another instance, one conversation's messages are processed one at a time wherever they
land, limits and answers and models are the same everywhere, and a killed instance loses no
message that was acknowledged.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from sqlmodel import Session

from tests.conftest import (
    REDIS_URL,
    Served,
    postgres_databases,
    processes_of,
    redis_reachable,
    serving,
    sid,
)
from tests.helpdesk.test_serve import Customer, _texts, _wait

pytestmark = pytest.mark.slow

FAQ = "I am still waiting on my card?"


@dataclass
class Scaled:
    served: Served
    topology: dict
    certificate: Path
    admin: dict[str, str]

    @property
    def tls(self) -> ssl.SSLContext:
        """Trusts the proxy's self-signed certificate, and nothing else."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def backend(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    @property
    def rasa_backends(self) -> list[str]:
        return [self.backend(p) for p in self.topology["rasa_backends"]]

    @property
    def action_backends(self) -> list[str]:
        return [self.backend(p) for p in self.topology["action_backends"]]

    def say(self, rasa: str, sender: str, message: str,
            message_id: str | None = None) -> httpx.Response:
        body = {"sender": sender, "message": message}
        if message_id:
            body["message_id"] = message_id
        return httpx.post(f"{rasa}/webhooks/rest/webhook", verify=self.tls, json=body,
                          timeout=60)

    def rasa_token(self) -> str:
        from admin_api.rasa_client import auth_header

        secret = (self.served.var_dir / "secrets" / "rasa_token").read_text().strip()
        return auth_header(secret)["Authorization"]

    def events(self, session_id: str) -> list[dict]:
        """The conversation's stored events, read through whichever instance is up (one may
        just have been killed: they all read the same tracker store)."""
        for backend in self.rasa_backends:
            try:
                reply = httpx.get(f"{backend}/conversations/{session_id}/tracker",
                                  headers={"Authorization": self.rasa_token()}, timeout=30)
            except httpx.ConnectError:
                continue
            reply.raise_for_status()
            return reply.json()["events"]
        raise AssertionError("no Rasa instance answers")

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        return httpx.request(method, f"{self.served.api}{path}", headers=self.admin,
                             verify=self.tls, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[Scaled]:
    if not redis_reachable():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    from helpdesk import proxy

    if not proxy.binary():
        pytest.skip("HAProxy is not installed (scripts/install_test_packages.sh installs it)")
    redis.Redis.from_url(REDIS_URL).flushdb()
    root = tmp_path_factory.mktemp("scaled")
    with postgres_databases() as create, serving(root, tiny_model) as start:
        served = start(args=("--profile", "scaled", "--rasa-instances", "2",
                             "--action-servers", "2", "--api-workers", "2"),
                       HELPDESK_DATABASE_URL=create(), HELPDESK_TRACKER_STORE_URL=create(),
                       HELPDESK_REDIS_URL=REDIS_URL, HELPDESK_LEASE_SECONDS="3",
                       HELPDESK_ADDRESS_MESSAGES_PER_MINUTE="0")
        run = served.var_dir / "run"
        yield Scaled(served, json.loads((run / "topology.json").read_text()),
                     served.var_dir / "secrets" / "proxy.pem",
                     {"Authorization": f"Bearer {served.admin_token()}"})
    redis.Redis.from_url(REDIS_URL).flushdb()


def test_customers_and_staff_reach_the_instances_through_the_proxy_over_tls(
        scaled: Scaled) -> None:
    text = scaled.served.text()
    assert "2 Rasa instances, 2 action servers, 2 API workers behind HAProxy" in text
    reply = scaled.say(scaled.served.rasa, sid("tls-1"), FAQ)
    assert reply.status_code == 200 and "working days" in _texts(reply.json())
    # TLS only on the public ports, with the certificate the proxy was given.
    with pytest.raises(httpx.HTTPError):
        httpx.get(scaled.served.rasa.replace("https://", "http://"), timeout=5)
    with pytest.raises(httpx.HTTPError):
        httpx.get(scaled.served.rasa, timeout=5)  # self-signed: not trusted by default
    assert scaled.api("GET", "/api/v1/answers/101").status_code == 200
    page = httpx.get(scaled.served.api + "/console/sign-in", verify=scaled.tls)
    assert page.status_code == 200
    # A widget's websocket goes through the proxy's TLS too.
    customer = Customer(scaled.served.rasa, sid("tls-socket"), origin=scaled.served.api,
                        ca_certs=str(scaled.certificate))
    try:
        customer.say(FAQ)
        _wait(lambda: any(m.get("answer_id") == 101 for m in customer.received),
              "no answer over a websocket through the proxy")
    finally:
        customer.client.disconnect()


def test_a_conversation_alternating_between_instances_completes_the_lost_card_form(
        scaled: Scaled) -> None:
    first, second = scaled.rasa_backends
    sender = sid("scaled-card")
    steps = [(first, "/lost_or_stolen_card", "last four digits"),
             (second, "it is 4111 1111 1111 1111", "Shall I freeze the card ending 1111 now?"),
             (first, "/affirm", "card ending 1111 is frozen")]
    for rasa, message, expected in steps:
        reply = scaled.say(rasa, sender, message)
        assert reply.status_code == 200, reply.text
        assert expected in _texts(reply.json()), (rasa, message, reply.json())


def test_a_staff_reply_reaches_a_customer_connected_to_the_other_instance(
        scaled: Scaled) -> None:
    first, second = scaled.rasa_backends
    session = sid("scaled-handoff")
    customer = Customer(first, session, origin=scaled.served.api)
    try:
        customer.say("/request_human")
        _wait(lambda: any("support team" in t for t in customer.texts()), "no hand-off reply")
        # Sent through the second instance, whose own sockets do not include this customer's.
        events = [{"event": "bot", "text": "Hello from the second instance",
                   "metadata": {"staff": "admin"}}]
        delivered = httpx.post(
            f"{second}/conversations/{session}/tracker/events",
            params={"execute_side_effects": "true", "output_channel": "socketio"},
            headers={"Authorization": scaled.rasa_token()}, json=events, timeout=30)
        assert delivered.status_code == 200, delivered.text
        _wait(lambda: "Hello from the second instance" in customer.texts(),
              "a reply sent through another instance did not reach the socket")
        # And the console's own path (the admin API through the proxy, either instance).
        for n in range(2):
            reply = scaled.api("POST", f"/api/v1/handoff/{session}/reply",
                               json={"text": f"Staff reply {n}"})
            assert reply.status_code == 202, reply.text
            _wait(lambda n=n: f"Staff reply {n}" in customer.texts(),
                  "a staff reply from the console did not reach the socket")
    finally:
        customer.client.disconnect()


def test_two_messages_of_one_conversation_sent_at_once_to_two_instances_are_processed_in_turn(
        scaled: Scaled) -> None:
    first, second = scaled.rasa_backends
    session = sid("scaled-lock")
    for round_ in range(4):
        messages = [f"{FAQ} ({round_}a)", f"{FAQ} ({round_}b)"]  # both answered
        replies = _at_once([(first, session, messages[0]), (second, session, messages[1])],
                           scaled.say)
        assert all(r.status_code == 200 for r in replies), replies
    # Each message's turn ends (the bot listens again) before the next message starts.
    events = scaled.events(session)
    story = [(e["event"], e.get("name") or e.get("text")) for e in events
             if e["event"] in ("user", "action", "bot")]
    turns: list[str] = []
    open_turn = False
    for event in events:
        if event["event"] == "user":
            assert not open_turn, f"a message started while another was processed: {story}"
            turns.append(event["text"])
            open_turn = True
        elif event["event"] == "action" and event["name"] == "action_listen":
            open_turn = False
    assert len(turns) == 8 and len(set(turns)) == 8


def test_a_message_sent_again_is_processed_once_whichever_instance_gets_it(
        scaled: Scaled) -> None:
    first, second = scaled.rasa_backends
    session = sid("scaled-resend")
    # The same widget's two connections, on two instances (a reconnection moved it).
    one = Customer(first, session, origin=scaled.served.api)
    two = Customer(second, session, origin=scaled.served.api)
    try:
        frame = {"message": FAQ, "session_id": session, "message_id": "resend-1"}
        assert one.client.call("user_uttered", frame, timeout=60) == {
            "message_id": "resend-1", "status": "stored"}
        assert two.client.call("user_uttered", frame, timeout=60) == {
            "message_id": "resend-1", "status": "duplicate"}
        refused = two.client.call("user_uttered", {**frame, "message_id": "no spaces"},
                                  timeout=60)
        assert refused["status"] == "refused" and "message_id" in refused["reason"]
    finally:
        one.client.disconnect()
        two.client.disconnect()
    # REST: a resend answers an empty list; a bad id is a 400 that names the field.
    answered = scaled.say(first, session, "/greet", message_id="resend-2")
    assert answered.status_code == 200 and answered.json()
    again = scaled.say(second, session, "/greet", message_id="resend-2")
    assert again.status_code == 200 and again.json() == []
    bad = scaled.say(second, session, "/greet", message_id="x" * 65)
    assert bad.status_code == 400 and "'message_id'" in bad.json()["error"]
    stored = [e["metadata"].get("client_message_id") for e in scaled.events(session)
              if e["event"] == "user"]
    assert stored == ["resend-1", "resend-2"]


def _at_once(calls: list[tuple[str, str, str]],
             say: Callable[[str, str, str], httpx.Response]) -> list[httpx.Response]:
    """Each call in its own thread, released together."""
    barrier = threading.Barrier(len(calls))
    replies: list[httpx.Response | None] = [None] * len(calls)

    def send(index: int) -> None:
        barrier.wait()
        replies[index] = say(*calls[index])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in replies if r is not None]


def test_the_rate_limit_of_a_conversation_is_shared_by_every_instance(scaled: Scaled) -> None:
    first, second = scaled.rasa_backends
    sender = sid("scaled-flood")
    codes = [scaled.say((first, second)[n % 2], sender, "/greet").status_code
             for n in range(14)]
    # 30 a minute with a burst of 10: alone, each instance would let 7 of 7 through.
    assert codes.count(429) >= 2, codes
    assert codes[:10] == [200] * 10, codes


def test_an_answer_published_once_goes_live_on_every_action_server(scaled: Scaled) -> None:
    created = scaled.api("POST", "/api/v1/answers", json={
        "title": "Metal cards", "status": "published",
        "body": "Our metal card costs 50 EUR a year and is made of recycled steel.",
        "questions": ["Can I get a card made of metal?", "How much is the metal card?"]})
    assert created.status_code == 201, created.text
    version = scaled.api("GET", "/api/v1/answers/changes", params={"since": 0}).json()["version"]

    def everywhere() -> bool:
        versions = [httpx.get(f"{url}/health/answers", timeout=5).json()["answers_version"]
                    for url in scaled.action_backends]
        return all(v is not None and v >= version for v in versions)

    _wait(everywhere, "an action server did not pick up the published answer", timeout=30)
    pids = {httpx.get(f"{url}/health/answers").json()["pid"] for url in scaled.action_backends}
    assert len(pids) == 2
    for rasa in scaled.rasa_backends:
        reply = scaled.say(rasa, sid(f"metal-{rasa}"), "Can I get a card made of metal?")
        assert "recycled steel" in _texts(reply.json())


def test_a_model_promoted_once_is_served_by_every_instance(scaled: Scaled,
                                                           other_tiny_model: Path) -> None:
    from common.db import get_engine
    from learning import registry

    with Session(get_engine(scaled.served.database_url)) as session:
        entry = registry.register(session, other_tiny_model)
        session.commit()
        key, model_id = entry.id, entry.model_id
    promoted = scaled.api("POST", f"/api/v1/models/{key}/promote")
    assert promoted.status_code == 200, promoted.text

    def served_everywhere() -> bool:
        files = []
        for url in scaled.rasa_backends:
            status = httpx.get(f"{url}/status", headers={"Authorization": scaled.rasa_token()},
                               timeout=10).json()
            files.append(status.get("model_id"))
        return files == [model_id, model_id]

    _wait(served_everywhere, "an instance still serves the old model", timeout=180, every=1)


def _rasa_pid(scaled: Scaled, port: int) -> int:
    for pid in processes_of(scaled.served.var_dir):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bot.runtime.rasa_server" in command and str(port).encode() in command:
            return pid
    raise AssertionError(f"no Rasa process on port {port}")


def test_killing_a_rasa_instance_under_load_loses_no_acknowledged_message(
        scaled: Scaled) -> None:
    stop = threading.Event()
    acknowledged: dict[str, list[str]] = {}
    refused: list[int] = []

    def customer(n: int) -> None:
        session = uuid.uuid4().hex
        acknowledged[session] = []
        count = 0
        while not stop.is_set():
            text = f"{FAQ} [{n}-{count}]"
            count += 1
            try:
                reply = scaled.say(scaled.served.rasa, session, text)
            except httpx.HTTPError:
                refused.append(0)
                continue
            if reply.status_code == 200:
                acknowledged[session].append(text)
            else:
                refused.append(reply.status_code)
            time.sleep(0.2)

    threads = [threading.Thread(target=customer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    victim_port = scaled.topology["rasa_backends"][0]
    os.kill(_rasa_pid(scaled, victim_port), signal.SIGKILL)
    killed_at = time.monotonic()
    time.sleep(8)
    stop.set()
    for thread in threads:
        thread.join()
    assert sum(len(texts) for texts in acknowledged.values()) > 30
    for session, texts in acknowledged.items():
        stored = [e["text"] for e in scaled.events(session) if e["event"] == "user"]
        assert [t for t in texts if t not in stored] == [], "an acknowledged message was lost"
    # The supervisor restarts the killed instance, and the proxy routes to it again.
    _wait(lambda: "Rasa server 1 is back" in scaled.served.text(),
          "the killed instance did not come back", timeout=240, every=1)
    assert time.monotonic() - killed_at < 240


def test_the_periodic_tasks_run_in_one_api_worker_and_move_when_it_dies(
        scaled: Scaled) -> None:
    from admin_api.models import Lease
    from common.db import get_engine

    def holder() -> int:
        with Session(get_engine(scaled.served.database_url)) as session:
            lease = session.get(Lease, "background")
            assert lease is not None
            return int(lease.holder.split(":")[1])

    def workers() -> list[int]:
        found = []
        for pid in processes_of(scaled.served.var_dir):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command:  # uvicorn's worker processes
                found.append(pid)
        return found

    running = holder()
    assert running in workers() and len(workers()) == 2
    os.kill(running, signal.SIGKILL)
    # The other worker takes the lapsed lease (3 s here) and runs the tasks from then on.
    _wait(lambda: holder() != running and holder() in workers(),
          "no other worker took over the periodic tasks", timeout=30, every=0.5)
