"""Load and loss: Locust's widget customers on socket.io against a running product.

It starts ``helpdesk serve`` (embedded) or ``helpdesk serve --profile scaled`` in a temporary
var dir, then runs N socket.io customers, headless. Each customer sends M BANKING77 test
questions, one after another with a think time. Each question carries its own ``message_id``
and is emitted with an acknowledgement callback.

For every message the run records:
- the reply latency (from the emit to the acknowledgement, which follows the turn's replies);
- whether exactly one turn's replies came back, in order.

The admin API's transcripts then show what the server stored:
- **lost**: acknowledged but not stored;
- **duplicated**: stored twice.

With ``--kill rasa``, one Rasa instance is killed with SIGKILL halfway through. Its customers
reconnect and send their unacknowledged message again; the run also reports the time until
the supervisor has the instance back.

``--mode cost`` measures what a turn costs and the rate the bot sustains, over Rasa's REST
channel with a new conversation per question (BANKING77 test questions), for three targets
served on this machine:
- ``ours``: this checkout (``helpdesk serve``, embedded);
- ``today``: the code of commit 8feb320, before the cheaper turn (a git worktree under
  ``build/``, with a model trained by that code);
- ``stock``: what a Rasa user builds in an afternoon: Rasa's default DIET pipeline with its
  ResponseSelector answering BANKING77's intents from responses (our curated answers' texts),
  RulePolicy and MemoizationPolicy, the SQLite tracker store and no action server, trained
  on the same examples by ``rasa train`` and served by ``rasa run``. Its epochs are few
  (serving cost does not depend on them; its accuracy is in ``bench/results/intent.json``).

For each: one customer alone (``--single`` turns one after another: reply p50 / p95 and the
server's CPU ms per turn), then open-loop Locust arrivals at a ladder of rates (``--rates``,
``--step-seconds`` each). The server's CPU is read from its processes' own counters
(``/proc``), so the load generator's share never counts. The sustained rate is the highest
step with p95 <= 300 ms, no errors and at least 95 % of the offered rate served; the
physical limit is cores x 1000 / (CPU ms per turn).

Results are merged into ``bench/results/load.json`` under ``<profile>[-kill-<what>]``
(``cost-<target>`` in the cost mode), and a markdown table is printed. It runs in the test
tools' environment, where Locust lives:

    .venv-tools/bin/python bench/load.py --profile embedded --customers 200 --messages 20
    HELPDESK_REDIS_URL=redis://127.0.0.1:6379/8 .venv-tools/bin/python bench/load.py \\
        --profile scaled --customers 200 --messages 20 [--kill rasa]
    .venv-tools/bin/python bench/load.py --mode cost --target ours|today|stock

The model served is ``HELPDESK_MODEL``, or the newest in ``var/models`` (``make run`` trains
one). The scaled profile gets two new PostgreSQL databases (``createdb``) and the Redis
database of ``HELPDESK_REDIS_URL``, flushed first.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import csv  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
import socketio  # noqa: E402
from locust import User, constant, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.exception import StopUser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HELPDESK = str(ROOT / ".venv" / "bin" / "helpdesk")
QUESTIONS_CSV = ROOT.parent / "shared" / "datasets" / "banking77" / "test.csv"

from bench.results_file import add_smoke_flag, merge  # noqa: E402
from bench.stock_rasa import stock_config  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def questions() -> list[str]:
    if not QUESTIONS_CSV.is_file():
        raise SystemExit(f"{QUESTIONS_CSV} is missing: the load uses BANKING77's test questions "
                         "(../shared/datasets)")
    with QUESTIONS_CSV.open(encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def newest_model() -> str:
    if os.environ.get("HELPDESK_MODEL"):
        return os.environ["HELPDESK_MODEL"]
    models = sorted((ROOT / "var" / "models").glob("*.tar.gz"))
    if not models:
        raise SystemExit("no model in var/models: run `make run` once, or set HELPDESK_MODEL")
    return str(models[-1])


@dataclass
class Stack:
    process: subprocess.Popen
    var_dir: Path
    rasa: str
    api: str
    admin_token: str
    tls: ssl.SSLContext | bool
    created: list[str] = field(default_factory=list)


def start(profile: str, workdir: Path, command: list[str] | None = None, cwd: Path = ROOT,
          extra: dict[str, str] | None = None) -> Stack:
    var_dir = workdir / "var"
    ports = {"HELPDESK_API_PORT": free_port(), "HELPDESK_RASA_PORT": free_port(),
             "HELPDESK_ACTIONS_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update({k: str(v) for k, v in ports.items()})
    env.update({"HELPDESK_VAR_DIR": str(var_dir), "HELPDESK_MODEL": newest_model(),
                # Every customer comes from 127.0.0.1 and sends without pause: no limits.
                "HELPDESK_SENDER_MESSAGES_PER_MINUTE": "0",
                "HELPDESK_ADDRESS_MESSAGES_PER_MINUTE": "0",
                "HELPDESK_PROPOSAL_CHECK_SECONDS": "0", "HF_HUB_OFFLINE": "1",
                **(extra or {})})
    args = command or [HELPDESK, "serve"]
    created: list[str] = []
    scheme = "http"
    if profile == "scaled":
        redis_url = os.environ.get("HELPDESK_REDIS_URL", "redis://127.0.0.1:6379/8")
        subprocess.run(["redis-cli", "-u", redis_url, "flushdb"], check=True,
                       capture_output=True)
        for _ in range(2):
            name = f"helpdesk_load_{uuid.uuid4().hex[:10]}"
            subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
            created.append(name)
        env.update({"HELPDESK_REDIS_URL": redis_url,
                    "HELPDESK_DATABASE_URL": f"postgresql://postgres@127.0.0.1/{created[0]}",
                    "HELPDESK_TRACKER_STORE_URL": f"postgresql://postgres@127.0.0.1/{created[1]}"})
        args += ["--profile", "scaled", "--rasa-instances", "2", "--action-servers", "2",
                 "--api-workers", "2"]
        scheme = "https"
    log = workdir / "serve.log"
    process = subprocess.Popen(args, env=env, cwd=cwd, stdout=log.open("w"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 900
    while "Press Ctrl-C to stop." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"serve failed:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    lines = log.read_text().splitlines()
    [at] = [i for i, line in enumerate(lines) if "Its API token is shown only now" in line]
    tls: ssl.SSLContext | bool = False
    if scheme == "https":
        tls = ssl.create_default_context(cafile=str(var_dir / "secrets" / "proxy.pem"))
    return Stack(process, var_dir, f"{scheme}://127.0.0.1:{ports['HELPDESK_RASA_PORT']}",
                 f"{scheme}://127.0.0.1:{ports['HELPDESK_API_PORT']}", lines[at + 1].strip(),
                 tls, created)


def stop(stack: Stack) -> None:
    stack.process.send_signal(signal.SIGINT)
    try:
        stack.process.wait(120)
    except subprocess.TimeoutExpired:
        os.killpg(stack.process.pid, signal.SIGKILL)
    for name in stack.created:
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", name],
                       check=False)


@dataclass
class Sent:
    text: str
    message_id: str
    status: str = "unacknowledged"
    latency_ms: float | None = None
    acked_at: float = 0.0  # time.monotonic() of the acknowledgement
    replies: int = 0  # text replies that arrived for this message (before the next one left)
    late_replies: int = 0  # of those, the ones after its acknowledgement


LEDGER: dict[str, list[Sent]] = {}  # per conversation
FINISHED: list[str] = []  # customers who sent all their messages
SETTINGS: dict[str, object] = {}


class WidgetCustomer(User):
    """One widget: a socket.io connection (websocket), its session, M questions."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.current: Sent | None = None
        self.handed_over = False
        self._new_conversation()
        self._connect()

    def _new_conversation(self) -> None:
        self.session = uuid.uuid4().hex
        self.sent: list[Sent] = []
        LEDGER[self.session] = self.sent

    def _connect(self) -> None:
        """Connect as the widget does: again and again while the server is too busy to
        take the handshake (a saturated Rasa answers it late)."""
        for attempt in range(30):
            try:
                self._connect_once()
                return
            except Exception:  # noqa: BLE001 - socket.io's ConnectionError, a timeout
                gevent.sleep(min(5.0, 0.5 * (attempt + 1)))
        raise RuntimeError("could not connect in 30 attempts")

    def _connect_once(self) -> None:
        http = requests.Session()
        tls = SETTINGS["tls"]
        if isinstance(tls, str):
            http.verify = tls
        # As a browser on the widget's page would send it (websocket-client sets its own).
        self.sio = socketio.Client(reconnection=False, http_session=http, request_timeout=30,
                                   websocket_extra_options={"origin": str(SETTINGS["origin"]),
                                                            "suppress_origin": False})
        self.confirmed = gevent.event.Event()
        self.sio.on("session_confirm", lambda _: self.confirmed.set())
        self.sio.on("bot_uttered", self._reply)
        self.sio.connect(str(SETTINGS["rasa"]), socketio_path="/socket.io",
                         transports=["websocket"])
        self.sio.emit("session_request", {"session_id": self.session})
        if not self.confirmed.wait(60):
            raise RuntimeError("no session_confirm")

    def _reply(self, message: dict) -> None:
        text = (message or {}).get("text") or ""
        if self.current is not None and text:
            # The last message sent, until the next one leaves: behind several instances a
            # reply travels through Redis and may come after the acknowledgement.
            self.current.replies += 1
            self.current.late_replies += self.current.acked_at > 0
        if "support team" in text and "connect you" not in text:
            self.handed_over = True  # waiting for a person now: the bot says no more

    @task
    def converse(self) -> None:
        pool: list[str] = SETTINGS["questions"]  # type: ignore[assignment]
        for k in range(int(SETTINGS["messages"])):  # type: ignore[call-overload]
            if self.handed_over:  # as a customer would: a new conversation with the bot
                self.handed_over = False
                self._new_conversation()
                self.confirmed.clear()
                self.sio.emit("session_request", {"session_id": self.session})
                self.confirmed.wait(60)
            sent = Sent(f"{random.choice(pool)} [{self.session[:8]}-{k}]", f"m{k}")
            self.sent.append(sent)
            self.current = sent
            self._send(sent)
            gevent.sleep(float(SETTINGS["think"]))  # type: ignore[arg-type]
        gevent.sleep(2.0)  # the last replies
        self.current = None
        FINISHED.append(self.session)
        self.sio.disconnect()
        raise StopUser()

    def _send(self, sent: Sent) -> None:
        """Emit until acknowledged: a broken connection is opened again and the same message
        sent again (the server recognises it by its id)."""
        started = time.perf_counter()
        frame = {"message": sent.text, "session_id": self.session, "message_id": sent.message_id}
        for attempt in range(20):
            try:
                if attempt:
                    gevent.sleep(1.0)
                    if not self.sio.connected:
                        self._connect()
                ack = self.sio.call("user_uttered", frame, timeout=120)
            except Exception as error:  # noqa: BLE001 - a dead instance, a timeout: again
                self.environment.events.request.fire(
                    request_type="socketio", name="user_uttered (retry)",
                    response_time=(time.perf_counter() - started) * 1000, response_length=0,
                    exception=error)
                try:
                    self.sio.disconnect()
                except Exception:  # noqa: BLE001
                    pass
                continue
            if ack.get("status") == "in_flight":
                continue
            sent.status = ack.get("status", "?")
            sent.latency_ms = (time.perf_counter() - started) * 1000
            sent.acked_at = time.monotonic()
            failure = None if sent.status in ("stored", "duplicate") else RuntimeError(
                f"{sent.status}: {ack.get('reason')}")
            self.environment.events.request.fire(
                request_type="socketio", name="user_uttered", response_time=sent.latency_ms,
                response_length=sent.replies, exception=failure)
            return


def stored_texts(stack: Stack, session: str) -> list[str]:
    """The customer's texts the admin API shows for a conversation; waits (up to 2 minutes)
    while the proxy still answers 5xx for an admin API that a fault has just restarted."""
    deadline = time.monotonic() + 120
    while True:
        reply = requests.get(f"{stack.api}/api/v1/conversations/{session}",
                             headers={"Authorization": f"Bearer {stack.admin_token}"},
                             verify=SETTINGS["tls"] if isinstance(SETTINGS["tls"], str) else True,
                             timeout=60)
        if reply.status_code < 500 or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    if reply.status_code == 404:
        return []
    reply.raise_for_status()
    return [e.get("text") or "" for e in reply.json()["entries"] if e["kind"] == "customer"]


def tag_of(text: str) -> str:
    """The ``[session-k]`` tag a customer's text ends with."""
    return text.rsplit("[", 1)[-1]


SERVICE_MARKERS = {  # what a process's command line holds, and the supervisor's name
    "rasa": (b"bot.runtime.rasa_server", "rasa_backends", "Rasa server 1"),
    "actions": (b"bot.runtime.action_server", "action_backends", "action server 1"),
    "admin_api": (b"admin_api.main:app", "", "admin API"),
    "worker": (b"helpdesk.cli", "", "retraining worker"),
}


def _pids_of(stack: Stack, marker: bytes, port: str) -> list[int]:
    """This stack's processes whose command line holds ``marker`` (and ``port``)."""
    tag = f"HELPDESK_VAR_DIR={stack.var_dir}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        words = command.split(b"\0")
        if (tag in environ and any(marker in w for w in words)
                and (not port or port.encode() in words)):
            found.append(int(entry.name))
    return found


def _probe(stack: Stack, deadline: float) -> float:
    """Seconds until a new conversation's REST turn gets a reply (from now)."""
    began = time.monotonic()
    verify = SETTINGS["tls"] if isinstance(SETTINGS["tls"], str) else True
    while time.monotonic() < deadline:
        try:
            reply = requests.post(f"{stack.rasa}/webhooks/rest/webhook", verify=verify,
                                  json={"sender": uuid.uuid4().hex, "message": "hi"}, timeout=10)
            if reply.status_code == 200 and reply.json():
                return time.monotonic() - began
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.5)
    return float("nan")


def inject(stack: Stack, what: str) -> float:
    """The fault ``what``; returns seconds until the stack has recovered from it: the
    supervisor reports a killed process back, or a restarted PostgreSQL or Redis answers a
    customer's turn again."""
    began = time.monotonic()
    if what in ("postgres", "redis"):
        command = (["pg_ctlcluster", os.environ.get("PG_CLUSTER", "15"), "main", "restart"]
                   if what == "postgres" else ["service", "redis-server", "restart"])
        subprocess.run(command, check=True, capture_output=True)
        return round(time.monotonic() - began + _probe(stack, began + 600), 1)
    marker, backends, name = SERVICE_MARKERS[what]
    port = ""
    if backends:
        topology = json.loads((stack.var_dir / "run" / "topology.json").read_text())
        port = str(topology[backends][0])
    victims = _pids_of(stack, marker, "worker" if what == "worker" else port)
    if not victims:
        raise SystemExit(f"no {what} process to kill")
    children = [pid for victim in victims for pid in _children(victim)]
    for pid in victims + children:  # the admin API's workers die with it
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    killed = time.monotonic()
    log = stack.var_dir.parent / "serve.log"
    while f"{name} is back" not in log.read_text(errors="replace"):
        if time.monotonic() - killed > 600:
            return float("nan")
        time.sleep(0.5)
    return round(time.monotonic() - killed, 1)


def _proc_stats() -> dict[int, list[bytes]]:
    """Every live process's ``/proc/<pid>/stat`` fields after the command name."""
    stats: dict[int, list[bytes]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
    return stats


def _children(pid: int) -> list[int]:
    return [child for child, fields in _proc_stats().items() if int(fields[1]) == pid]


HELD: dict[str, list[str]] = {}  # conversations waiting for a person: what the bot said after


def hold_conversations(stack: Stack, count: int) -> None:
    """Hand ``count`` conversations over to a person (REST), before the load starts."""
    verify = SETTINGS["tls"] if isinstance(SETTINGS["tls"], str) else True
    for _ in range(count):
        sender = uuid.uuid4().hex
        requests.post(f"{stack.rasa}/webhooks/rest/webhook", verify=verify, timeout=60,
                      json={"sender": sender, "message": "/request_human"}).raise_for_status()
        HELD[sender] = []


def keep_writing_while_held(stack: Stack, stop_at: float) -> None:
    """Customers of held conversations write every few seconds, through the faults too; the
    bot may acknowledge once (the waiting message), never answer."""
    verify = SETTINGS["tls"] if isinstance(SETTINGS["tls"], str) else True
    pool: list[str] = SETTINGS["questions"]  # type: ignore[assignment]
    while time.monotonic() < stop_at:
        for sender, heard in HELD.items():
            try:
                reply = requests.post(f"{stack.rasa}/webhooks/rest/webhook", verify=verify,
                                      json={"sender": sender, "message": random.choice(pool)},
                                      timeout=60)
                if reply.status_code == 200:
                    heard.extend(m.get("text") or "" for m in reply.json())
            except (requests.RequestException, ValueError):
                pass  # a fault: the next round tries again
        gevent.sleep(3.0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(args: argparse.Namespace) -> dict:
    LEDGER.clear()
    FINISHED.clear()
    workdir = Path(tempfile.mkdtemp(prefix="helpdesk-load-"))
    stack = start(args.profile, workdir)
    try:
        tls = str(stack.var_dir / "secrets" / "proxy.pem") if stack.tls else False
        SETTINGS.update({"rasa": stack.rasa, "tls": tls, "origin": stack.api,
                         "messages": args.messages, "think": args.think,
                         "questions": questions()})
        environment = Environment(user_classes=[WidgetCustomer])
        runner = environment.create_local_runner()
        started = time.monotonic()
        runner.start(args.customers, spawn_rate=args.spawn_rate)
        HELD.clear()
        hold_conversations(stack, args.held)
        writers = gevent.spawn(keep_writing_while_held, stack, started + args.timeout)
        recovery = None
        if args.kill != "none":
            # A third of the way through the customers' messages, so that the fault lands
            # while they are still writing (after it, there would be nothing to lose).
            gevent.sleep(args.kill_after if args.kill_after is not None
                         else max(3.0, args.messages * args.think / 3))
            recovery = gevent.spawn(inject, stack, args.kill)
        deadline = started + args.timeout
        while time.monotonic() < deadline:
            gevent.sleep(5)
            done = sum(len(s) for s in LEDGER.values())
            finished = len(FINISHED)
            print(f"{time.monotonic() - started:6.0f} s: {done} messages sent, "
                  f"{finished}/{args.customers} customers done", flush=True)
            if finished >= args.customers or (time.monotonic() - started > 30
                                              and runner.user_count == 0):
                break
        runner.quit()
        writers.kill()
        last = max((s.acked_at for sent in LEDGER.values() for s in sent), default=0.0)
        elapsed = max(last, started + 1e-3) - started
        recovered = recovery.get(timeout=600) if recovery is not None else None
        latencies = [s.latency_ms for sent in LEDGER.values() for s in sent
                     if s.latency_ms is not None]
        acknowledged = [(session, s) for session, sent in LEDGER.items() for s in sent
                        if s.status in ("stored", "duplicate")]
        lost = duplicated = out_of_order = 0
        for session, sent in LEDGER.items():
            # By the tag each text ends with: the channels mask card numbers and codes, so a
            # stored text may differ from the one sent.
            stored = [tag_of(text) for text in stored_texts(stack, session)]
            wanted = [tag_of(s.text) for s in sent if s.status in ("stored", "duplicate")]
            lost += sum(1 for tag in wanted if tag not in stored)
            duplicated += sum(max(0, stored.count(tag) - 1) for tag in wanted)
            positions = [stored.index(tag) for tag in wanted if tag in stored]
            out_of_order += sum(1 for a, b in itertools.pairwise(positions) if b < a)
        no_reply = sum(1 for _, s in acknowledged if s.replies == 0)
        return {
            "profile": args.profile, "kill": args.kill, "customers": args.customers,
            "messages_per_customer": args.messages, "think_s": args.think,
            "sent": sum(len(s) for s in LEDGER.values()), "acknowledged": len(acknowledged),
            "unacknowledged": sum(1 for sent in LEDGER.values() for s in sent
                                  if s.status not in ("stored", "duplicate")),
            "resent_recognised": sum(1 for _, s in acknowledged if s.status == "duplicate"),
            "lost": lost, "duplicated": duplicated, "out_of_order": out_of_order,
            "acknowledged_without_reply": no_reply,
            "replies_after_acknowledgement": sum(s.late_replies for _, s in acknowledged),
            "elapsed_s": round(elapsed, 1),
            "replies_per_s": round(len(acknowledged) / elapsed, 2),
            "latency_ms": {"p50": round(percentile(latencies, 0.5)),
                           "p95": round(percentile(latencies, 0.95)),
                           "p99": round(percentile(latencies, 0.99)),
                           "mean": round(statistics.fmean(latencies)) if latencies else None},
            "errors": environment.stats.total.num_failures,
            "recovery_s": round(recovered, 1) if recovered is not None else None,
            "held_conversations": len(HELD),
            # Beyond the one waiting acknowledgement each: bot messages a held customer got.
            "held_answered": sum(max(0, len(heard) - 1) for heard in HELD.values()),
        }
    finally:
        stop(stack)


# --- the cost mode: what a turn costs, against today's code and a stock Rasa bot ---------------

TODAY = "8feb320"  # the last commit before the cheaper turn
PYTHON = str(ROOT / ".venv" / "bin" / "python")
HELPDESK_CLI = ["-c", "from helpdesk.cli import app; app()"]
TRAIN_CSV = ROOT.parent / "shared" / "datasets" / "banking77" / "train.csv"
P95_TARGET_MS = 300.0



def _build_env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")},
            "HF_HUB_OFFLINE": "1", "RASA_TELEMETRY_ENABLED": "false"}


def prepare_today() -> tuple[Path, str]:
    """A worktree of today's code with a model trained by that code (made once, kept)."""
    tree = ROOT / "build" / f"bench-{TODAY}"
    if not (tree / "helpdesk").is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", "--force", str(tree), TODAY],
                       cwd=ROOT, check=True)
    models = sorted((tree / "var" / "models").glob("*.tar.gz"))
    if not models:
        print(f"[cost] training a model with {TODAY}'s code", flush=True)
        env = {**_build_env(), "PYTHONPATH": str(tree), "HELPDESK_VAR_DIR": str(tree / "var")}
        subprocess.run([PYTHON, *HELPDESK_CLI, "train"], cwd=tree, env=env, check=True)
        models = sorted((tree / "var" / "models").glob("*.tar.gz"))
    return tree, str(models[-1])


def prepare_stock(epochs: int) -> Path:
    """Rasa's default DIET bot of BANKING77 with a ResponseSelector (trained once, kept)."""
    import yaml

    project = ROOT / "build" / f"bench-stock-{epochs}"
    models = sorted((project / "models").glob("*.tar.gz"))
    if models:
        return models[-1]
    project.mkdir(parents=True, exist_ok=True)
    with TRAIN_CSV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    answers: dict[str, str] = {}
    for path in sorted((ROOT / "data" / "answers").glob("*.yaml")):
        for answer in yaml.safe_load(path.read_text()) or []:
            if answer.get("intent") and answer.get("status", "published") == "published":
                answers.setdefault(answer["intent"], answer["body"].strip())
    by_intent: dict[str, list[str]] = {}
    for row in rows:
        by_intent.setdefault(row["category"], []).append(" ".join(row["text"].split()))
    nlu = {"version": "3.1", "nlu": [
        {"intent": f"faq/{intent}", "examples": "".join(f"- {t}\n" for t in texts)}
        for intent, texts in sorted(by_intent.items())]}
    responses = {f"utter_faq/{intent}": [{"text": answers.get(
        intent, "Our team will get back to you about that.")}] for intent in sorted(by_intent)}
    responses["utter_default"] = [{"text": "Sorry, I did not get that."}]
    domain = {"version": "3.1", "intents": ["faq", "nlu_fallback"], "responses": responses,
              "session_config": {"session_expiration_time": 60,
                                 "carry_over_slots_to_new_session": True}}
    rules = {"version": "3.1", "rules": [
        {"rule": "answer a question", "steps": [{"intent": "faq"}, {"action": "utter_faq"}]},
        {"rule": "fall back", "steps": [{"intent": "nlu_fallback"},
                                         {"action": "utter_default"}]}]}
    (project / "nlu.yml").write_text(yaml.safe_dump(nlu, sort_keys=False))
    (project / "domain.yml").write_text(yaml.safe_dump(domain, sort_keys=False))
    (project / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    (project / "config.yml").write_text(
        stock_config(epochs, response_selector=True,
                     policies=("MemoizationPolicy", "RulePolicy")))
    print(f"[cost] training the stock Rasa bot ({epochs} epochs)", flush=True)
    subprocess.run([PYTHON, "-m", "rasa", "train", "--config", "config.yml", "--domain",
                    "domain.yml", "--data", "nlu.yml", "rules.yml", "--out", "models"],
                   cwd=project, env={**_build_env(), "RASA_CACHE_DIRECTORY": str(
                       project / "cache")}, check=True)
    return sorted((project / "models").glob("*.tar.gz"))[-1]


def start_target(target: str, workdir: Path, epochs: int) -> Stack:
    """``ours`` or ``today`` as ``helpdesk serve``, or the stock bot as ``rasa run``."""
    if target == "ours":
        return start("embedded", workdir)
    if target == "today":
        tree, model = prepare_today()
        return start("embedded", workdir, command=[PYTHON, *HELPDESK_CLI, "serve"], cwd=tree,
                     extra={"PYTHONPATH": str(tree), "HELPDESK_MODEL": model})
    model = prepare_stock(epochs)
    port = free_port()
    (workdir / "endpoints.yml").write_text(
        f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {workdir / 'tracker.db'}\n")
    (workdir / "credentials.yml").write_text("rest:\n")
    log = workdir / "serve.log"
    process = subprocess.Popen(
        [PYTHON, "-m", "rasa", "run", "--model", str(model), "--port", str(port),
         "--endpoints", "endpoints.yml", "--credentials", "credentials.yml"],
        cwd=workdir, env=_build_env(), stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.monotonic() + 600
    while "Rasa server is up and running" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"rasa run failed:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return Stack(process, workdir, f"http://127.0.0.1:{port}", "", "", False)


def _role(command: bytes) -> str:
    """Which server a process is, by its command line (today's code ran ``rasa`` itself)."""
    for marker, role in ((b"rasa_server", "rasa"), (b"-mrasa", "rasa"), (b"action", "actions"),
                         (b"admin_api", "admin_api"), (b"worker", "worker")):
        if marker in command.replace(b"\0", b""):
            return role
    return "supervisor"


def server_cpu_ms(root: int) -> dict[str, float]:
    """CPU milliseconds (user + system) of ``root`` and its live descendants, by role."""
    stats = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        if pid not in stats:
            continue
        try:
            role = _role(Path(f"/proc/{pid}/cmdline").read_bytes())
        except OSError:
            continue
        used = (int(stats[pid][11]) + int(stats[pid][12])) * tick_ms  # utime, stime
        totals[role] = totals.get(role, 0.0) + used
    return totals


def _cpu_per_turn(before: dict[str, float], after: dict[str, float], turns: int) -> dict:
    roles = {role: round((after.get(role, 0) - before.get(role, 0)) / max(1, turns), 2)
             for role in sorted(set(before) | set(after))}
    return {"total": round(sum(roles.values()), 2), "by_process": roles}


def rest_turn(rasa: str, text: str) -> tuple[float, bool]:
    """One question in a new conversation: (milliseconds, whether a reply came back)."""
    started = time.perf_counter()
    try:
        reply = requests.post(f"{rasa}/webhooks/rest/webhook", timeout=60,
                              json={"sender": uuid.uuid4().hex, "message": text})
        ok = reply.status_code == 200 and any(m.get("text") for m in reply.json())
    except (requests.RequestException, ValueError):
        ok = False
    return (time.perf_counter() - started) * 1000, ok


class Arrivals(User):
    """Open loop: questions arrive at ``SETTINGS['rate']`` per second whatever the replies
    do (a closed loop would slow its own arrivals as the server slows)."""

    wait_time = constant(0)

    @task
    def arrive(self) -> None:
        pool: list[str] = SETTINGS["questions"]  # type: ignore[assignment]
        rate, seconds = float(SETTINGS["rate"]), float(SETTINGS["seconds"])  # type: ignore[arg-type]
        begun = time.monotonic()
        pending = []
        for k in range(int(rate * seconds)):
            gevent.sleep(max(0.0, begun + k / rate - time.monotonic()))
            pending.append(gevent.spawn(self._one, random.choice(pool)))
        gevent.joinall(pending, timeout=120)
        raise StopUser()

    def _one(self, text: str) -> None:
        latency, ok = rest_turn(str(SETTINGS["rasa"]), text)
        self.environment.events.request.fire(
            request_type="rest", name="webhook", response_time=latency, response_length=0,
            exception=None if ok else RuntimeError("no reply"))


def open_loop_step(stack: Stack, rate: float, seconds: float) -> dict:
    SETTINGS.update({"rasa": stack.rasa, "rate": rate, "seconds": seconds})
    environment = Environment(user_classes=[Arrivals])
    runner = environment.create_local_runner()
    before, began = server_cpu_ms(stack.process.pid), time.monotonic()
    runner.start(1, spawn_rate=1)
    gevent.sleep(1)
    while runner.user_count:
        gevent.sleep(0.5)
    elapsed = time.monotonic() - began
    after = server_cpu_ms(stack.process.pid)
    runner.quit()
    total = environment.stats.total
    served = total.num_requests - total.num_failures
    return {"offered_per_s": rate, "served_per_s": round(served / elapsed, 2),
            "requests": total.num_requests, "errors": total.num_failures,
            "latency_ms": {q: round(total.get_response_time_percentile(v) or 0)
                           for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
            "cpu_ms_per_turn": _cpu_per_turn(before, after, total.num_requests)}


# The Rasa side of a turn, step by step: the target's own model and endpoints (its action
# server, its kind of tracker store on a fresh SQLite file, no model server), loaded in one
# process under cProfile with the main thread's CPU clock (Rasa's steps run there); what other
# threads spend (ONNX Runtime's, the tokenizer's) is reported apart. The profiler's own cost
# inflates every figure: read them as shares. Run with the target's own code first on the path.
PROFILE = r"""
import asyncio, cProfile, json, pstats, sys, time, uuid
import yaml
try:
    from bot.runtime import rasa_patches  # what this tree's Rasa entry point installs
    rasa_patches.install()
except ImportError:
    pass
from rasa.core.agent import load_agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.utils import AvailableEndpoints
model, endpoints_path, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
STEPS = {
    "nlu": ("rasa/core/processor.py", "parse_message"),
    "tracker_load": ("rasa/core/tracker_store.py", "retrieve"),
    "tracker_save": ("rasa/core/tracker_store.py", "save"),
    "policies": ("rasa/core/processor.py", "_predict_next_with_tracker"),
    "action_request": ("rasa/core/actions/action.py", "_action_call_format"),
    "action_http": ("rasa/utils/endpoints.py", "request"),
    "action_events": ("rasa/core/processor.py", "_log_action_on_tracker"),
    "lock": ("rasa/core/lock_store.py", "lock"),
}
async def main():
    agent = await load_agent(model_path=model,
                             endpoints=AvailableEndpoints.read_endpoints(endpoints_path))
    async def turn(text):
        await agent.handle_message(UserMessage(text, CollectingOutputChannel(),
                                               sender_id=uuid.uuid4().hex))
    for text in texts[:10]:
        await turn(text)
    profiler = cProfile.Profile(time.thread_time)
    started, main_started = time.process_time(), time.thread_time()
    profiler.enable()
    for text in texts[10:]:
        await turn(text)
    profiler.disable()
    total = time.process_time() - started
    main = time.thread_time() - main_started
    stats = pstats.Stats(profiler).stats
    turns = len(texts) - 10
    steps = {}
    for name, (path, function) in STEPS.items():
        steps[name] = sum(value[3] for key, value in stats.items()
                          if key[0].endswith(path) and key[2] == function) * 1000 / turns
    steps = {k: round(v, 2) for k, v in steps.items()}
    steps["other_main_thread"] = round(main * 1000 / turns - sum(steps.values()), 2)
    steps["other_threads"] = round((total - main) * 1000 / turns, 2)
    print("PROFILE" + json.dumps({"turns": turns, "total": round(total * 1000 / turns, 2),
                                  "steps": steps}))
asyncio.run(main())
"""


def _thread_settings(stack: Stack) -> dict[str, str]:
    """The thread pools' settings the target's own Rasa runs with (read from its process)."""
    for pid in [stack.process.pid, *_children(stack.process.pid)]:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if _role(command) == "rasa":
            pairs = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
            return {k: v for k, v in pairs.items()
                    if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}
    return {}


def profile_turns(stack: Stack, target: str, tree: Path, model: str, texts: list[str]) -> dict:
    """CPU ms per turn of each Rasa-side step, in one process, and of the action server (its
    own counters) over the same turns."""
    import yaml

    if target == "stock":
        source = stack.var_dir / "endpoints.yml"
    else:
        source = stack.var_dir / "run" / "endpoints.yml"
    endpoints = yaml.safe_load(source.read_text()) or {}
    endpoints.pop("models", None)
    endpoints.pop("event_broker", None)
    scratch = Path(tempfile.mkdtemp(prefix="helpdesk-profile-"))
    endpoints["tracker_store"] = {**endpoints["tracker_store"], "db": str(scratch / "t.db")}
    (scratch / "endpoints.yml").write_text(yaml.safe_dump(endpoints))
    env = {**_build_env(), "PYTHONPATH": str(tree),
           "HELPDESK_VAR_DIR": str(stack.var_dir),  # where the rasa token lives, for ours
           **_thread_settings(stack)}
    before = server_cpu_ms(stack.process.pid)
    output = subprocess.run([PYTHON, "-c", PROFILE, model, str(scratch / "endpoints.yml"),
                             json.dumps(texts)], cwd=tree, env=env, capture_output=True,
                            text=True, timeout=1800)
    after = server_cpu_ms(stack.process.pid)
    if output.returncode != 0 or "PROFILE" not in output.stdout:
        raise SystemExit(f"the profile failed:\n{output.stderr[-3000:]}")
    figures = json.loads(output.stdout.split("PROFILE", 1)[1])
    turns = figures["turns"] + 10
    figures["action_server"] = round((after.get("actions", 0) - before.get("actions", 0))
                                     / turns, 2)
    return figures


def cost(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"helpdesk-cost-{args.target}-"))
    stack = start_target(args.target, workdir, args.stock_epochs)
    pool = questions()
    SETTINGS["questions"] = pool
    try:
        for text in pool[:20]:  # warm-up: first calls load lazily
            rest_turn(stack.rasa, text)
        # What the servers spend with nobody chatting (model pulls, periodic tasks): it is in
        # every per-turn figure below, spread over the turns of the window.
        idle_before = server_cpu_ms(stack.process.pid)
        time.sleep(args.idle_seconds)
        idle = _cpu_per_turn(idle_before, server_cpu_ms(stack.process.pid), 1)
        idle = {"total": round(idle["total"] / args.idle_seconds, 2),
                "by_process": {k: round(v / args.idle_seconds, 2)
                               for k, v in idle["by_process"].items()}}
        rng = random.Random(0)
        sample = [rng.choice(pool) for _ in range(args.single)]
        before = server_cpu_ms(stack.process.pid)
        alone = [rest_turn(stack.rasa, text) for text in sample]
        after = server_cpu_ms(stack.process.pid)
        latencies = [ms for ms, _ in alone]
        single = {"turns": len(alone), "errors": sum(not ok for _, ok in alone),
                  "latency_ms": {"p50": round(percentile(latencies, 0.5), 1),
                                 "p95": round(percentile(latencies, 0.95), 1)},
                  "cpu_ms_per_turn": _cpu_per_turn(before, after, len(alone))}
        print(f"[cost] {args.target} alone: {json.dumps(single)}", flush=True)
        tree = ROOT / "build" / f"bench-{TODAY}" if args.target == "today" else ROOT
        model = (prepare_today()[1] if args.target == "today" else str(
            prepare_stock(args.stock_epochs)) if args.target == "stock" else newest_model())
        steps_profile = profile_turns(stack, args.target, tree, model,
                                      [rng.choice(pool) for _ in range(args.single // 2 + 10)])
        print(f"[cost] {args.target} profile: {json.dumps(steps_profile)}", flush=True)
        steps, failures = [], 0
        for rate in args.rates:
            step = open_loop_step(stack, rate, args.step_seconds)
            steps.append(step)
            print(f"[cost] {args.target} at {rate}/s: {json.dumps(step)}", flush=True)
            held = (step["errors"] == 0 and step["latency_ms"]["p95"] <= P95_TARGET_MS
                    and step["served_per_s"] >= 0.95 * rate)
            failures = 0 if held else failures + 1
            if failures >= 2:
                break
        sustained = max((s["offered_per_s"] for s in steps if s["errors"] == 0
                         and s["latency_ms"]["p95"] <= P95_TARGET_MS
                         and s["served_per_s"] >= 0.95 * s["offered_per_s"]), default=0.0)
        cpu = single["cpu_ms_per_turn"]["total"]
        limit = (os.cpu_count() or 1) * 1000 / cpu if cpu else None
        return {"target": args.target, "code": TODAY if args.target == "today" else (
                    "stock Rasa " + str(args.stock_epochs) + " epochs" if args.target == "stock"
                    else "this checkout"),
                "idle_cpu_ms_per_s": idle, "single": single, "profile": steps_profile,
                "steps": steps,
                "sustained_per_s": sustained,
                "p95_target_ms": P95_TARGET_MS,
                "physical_limit_per_s": round(limit, 1) if limit else None,
                "sustained_share_of_limit": round(sustained / limit, 3) if limit else None}
    finally:
        stop(stack)


def cost_table(figures: dict) -> str:
    rows = ["| target | alone p50 / p95 ms | CPU ms per turn (alone; by process) | "
            "sustained/s at p95 <= 300 ms | physical limit/s | share |",
            "|---|---|---|---|---|---|"]
    for name in ("cost-ours", "cost-today", "cost-stock"):
        f = figures.get(name)
        if not isinstance(f, dict):
            continue
        single = f["single"]
        parts = ", ".join(f"{k} {v}" for k, v in single["cpu_ms_per_turn"]["by_process"].items()
                          if v)
        rows.append(f"| {name[5:]} ({f['code']}) | {single['latency_ms']['p50']} / "
                    f"{single['latency_ms']['p95']} | {single['cpu_ms_per_turn']['total']} "
                    f"({parts}) | {f['sustained_per_s']} | {f['physical_limit_per_s']} | "
                    f"{f['sustained_share_of_limit']} |")
    return "\n".join(rows)


def table(figures: dict) -> str:
    rows = ["| run | customers x messages | acknowledged | lost | duplicated | out of order | "
            "replies/s | p50 / p95 / p99 ms | recovery s | held, answered |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, f in sorted(figures.items()):
        if not isinstance(f, dict) or "latency_ms" not in f or name.startswith("cost-"):
            continue
        latency = f["latency_ms"]
        rows.append(f"| {name} | {f['customers']} x {f['messages_per_customer']} | "
                    f"{f['acknowledged']} / {f['sent']} | {f['lost']} | {f['duplicated']} | "
                    f"{f['out_of_order']} | {f['replies_per_s']} | {latency['p50']} / "
                    f"{latency['p95']} / {latency['p99']} | "
                    f"{f['recovery_s'] if f['recovery_s'] is not None else '-'} | "
                    f"{f.get('held_conversations', '-')}, {f.get('held_answered', '-')} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("embedded", "scaled"), default="embedded")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--think", type=float, default=1.0, help="seconds between messages")
    parser.add_argument("--spawn-rate", type=float, default=20.0)
    parser.add_argument("--kill", default="none",
                        choices=("none", *SERVICE_MARKERS, "postgres", "redis"))
    parser.add_argument("--held", type=int, default=5,
                        help="conversations handed to a person that keep writing")
    parser.add_argument("--kill-after", type=float, default=None,
                        help="seconds after the start (default: a third of the messages)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--mode", choices=("loss", "cost"), default="loss",
                        help="loss: socket.io customers, nothing lost; cost: REST turn cost")
    parser.add_argument("--target", choices=("ours", "today", "stock"), default="ours")
    parser.add_argument("--single", type=int, default=200, help="turns of one customer alone")
    parser.add_argument("--rates", type=lambda v: [float(r) for r in v.split(",")],
                        default=[5, 10, 15, 20, 25, 30, 35, 40, 50, 60])
    parser.add_argument("--step-seconds", type=float, default=20.0)
    parser.add_argument("--stock-epochs", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.mode == "cost":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        if args.smoke:
            args.single, args.rates, args.step_seconds = 20, [2.0, 4.0], 5.0
        figures = cost(args)
        merged = merge("load", f"cost-{args.target}", figures, smoke=args.smoke)
        print(json.dumps(figures, indent=2))
        print(cost_table(merged))
        return
    # `timeout` and Ctrl-C alike must stop the product it started (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.kill in ("rasa", "actions", "redis") and args.profile != "scaled":
        parser.error(f"--kill {args.kill} needs --profile scaled (several instances, Redis)")
    figures = run(args)
    part = args.profile + (f"-kill-{args.kill}" if args.kill != "none" else "")
    merged = merge("load", part, figures, smoke=args.smoke)
    print(json.dumps(figures, indent=2))
    print(table(merged))


if __name__ == "__main__":
    main()
