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

Results are merged into ``bench/results/load.json`` under ``<profile>[-kill-<what>]``, and a
markdown table is printed. It runs in the test tools' environment, where Locust lives:

    .venv-tools/bin/python bench/load.py --profile embedded --customers 200 --messages 20
    HELPDESK_REDIS_URL=redis://127.0.0.1:6379/8 .venv-tools/bin/python bench/load.py \\
        --profile scaled --customers 200 --messages 20 [--kill rasa]

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


def start(profile: str, workdir: Path) -> Stack:
    var_dir = workdir / "var"
    ports = {"HELPDESK_API_PORT": free_port(), "HELPDESK_RASA_PORT": free_port(),
             "HELPDESK_ACTIONS_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update({k: str(v) for k, v in ports.items()})
    env.update({"HELPDESK_VAR_DIR": str(var_dir), "HELPDESK_MODEL": newest_model(),
                # Every customer comes from 127.0.0.1 and sends without pause: no limits.
                "HELPDESK_SENDER_MESSAGES_PER_MINUTE": "0",
                "HELPDESK_ADDRESS_MESSAGES_PER_MINUTE": "0",
                "HELPDESK_PROPOSAL_CHECK_SECONDS": "0", "HF_HUB_OFFLINE": "1"})
    args = [HELPDESK, "serve"]
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
    process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log.open("w"),
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
    reply = requests.get(f"{stack.api}/api/v1/conversations/{session}",
                         headers={"Authorization": f"Bearer {stack.admin_token}"},
                         verify=SETTINGS["tls"] if isinstance(SETTINGS["tls"], str) else True,
                         timeout=60)
    if reply.status_code == 404:
        return []
    reply.raise_for_status()
    return [e.get("text") or "" for e in reply.json()["entries"] if e["kind"] == "customer"]


def tag_of(text: str) -> str:
    """The ``[session-k]`` tag a customer's text ends with."""
    return text.rsplit("[", 1)[-1]


def kill_one_rasa(stack: Stack) -> float:
    """SIGKILL the first Rasa instance; returns seconds until serve reports it back."""
    topology = json.loads((stack.var_dir / "run" / "topology.json").read_text())
    port = str(topology["rasa_backends"][0]).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bot.runtime.rasa_server" in command and port in command:
            os.kill(int(entry.name), signal.SIGKILL)
            killed = time.monotonic()
            log = stack.var_dir.parent / "serve.log"
            while "Rasa server 1 is back" not in log.read_text(errors="replace"):
                if time.monotonic() - killed > 600:
                    return float("nan")
                time.sleep(0.5)
            return time.monotonic() - killed
    raise SystemExit("no Rasa instance to kill")


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
        recovery = None
        if args.kill == "rasa":
            gevent.sleep(args.kill_after)
            recovery = gevent.spawn(kill_one_rasa, stack)
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
        }
    finally:
        stop(stack)


def table(figures: dict) -> str:
    rows = ["| run | customers x messages | acknowledged | lost | duplicated | out of order | "
            "replies/s | p50 / p95 / p99 ms | recovery |", "|---|---|---|---|---|---|---|---|---|"]
    for name, f in sorted(figures.items()):
        if not isinstance(f, dict) or "latency_ms" not in f:
            continue
        latency = f["latency_ms"]
        rows.append(f"| {name} | {f['customers']} x {f['messages_per_customer']} | "
                    f"{f['acknowledged']} / {f['sent']} | {f['lost']} | {f['duplicated']} | "
                    f"{f['out_of_order']} | {f['replies_per_s']} | {latency['p50']} / "
                    f"{latency['p95']} / {latency['p99']} | "
                    f"{f['recovery_s'] if f['recovery_s'] is not None else '-'} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("embedded", "scaled"), default="embedded")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--think", type=float, default=1.0, help="seconds between messages")
    parser.add_argument("--spawn-rate", type=float, default=20.0)
    parser.add_argument("--kill", choices=("none", "rasa"), default="none")
    parser.add_argument("--kill-after", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    add_smoke_flag(parser)
    args = parser.parse_args()
    # `timeout` and Ctrl-C alike must stop the product it started (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.kill == "rasa" and args.profile != "scaled":
        parser.error("--kill rasa needs --profile scaled (the embedded profile has one Rasa)")
    figures = run(args)
    part = args.profile + (f"-kill-{args.kill}" if args.kill != "none" else "")
    merged = merge("load", part, figures, smoke=args.smoke)
    print(json.dumps(figures, indent=2))
    print(table(merged))


if __name__ == "__main__":
    main()
