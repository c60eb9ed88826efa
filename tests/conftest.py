"""Shared fixtures: real databases (SQLite, PostgreSQL), free ports, and one tiny Rasa model."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent
POSTGRES_ADMIN_URL = os.environ.get(
    "HELPDESK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SHARED_DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
CHROMIUM = os.environ.get("HELPDESK_CHROMIUM") or shutil.which("chromium")
RABBITMQ_URL = os.environ.get("HELPDESK_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
# A database of the machines' Redis of its own (the tests flush it).
REDIS_URL = os.environ.get("HELPDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
WIDGET = PROJECT_ROOT / "bot" / "widget" / "dist" / "widget.js"


def sid(label: str) -> str:
    """A conversation id the channels accept (32 hex digits, as Rasa makes them), named by a
    readable label: the same label is the same conversation within a test."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"lepton-helpdesk-test/{label}").hex


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def helpdesk_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a real ``helpdesk`` subprocess isolated in ``var_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update(
        {
            "HELPDESK_VAR_DIR": str(var_dir),
            "HELPDESK_DATABASE_URL": f"sqlite:///{var_dir / 'admin.db'}",
            "HELPDESK_TRACKER_STORE_URL": f"sqlite:///{var_dir / 'tracker.db'}",
            "HF_HUB_OFFLINE": "1",
            "RASA_TELEMETRY_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def _postgres_admin():  # psycopg2 connection
    import psycopg2

    try:
        connection = psycopg2.connect(POSTGRES_ADMIN_URL, connect_timeout=3)
    except psycopg2.OperationalError as error:
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_ADMIN_URL}: {error}".strip())
    connection.autocommit = True
    return connection


@contextmanager
def postgres_databases() -> Iterator[Callable[[], str]]:
    """Creates fresh, empty PostgreSQL databases on demand; drops them on the way out."""
    admin = _postgres_admin()
    created: list[str] = []
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]

    def create() -> str:
        name = f"helpdesk_test_{uuid.uuid4().hex[:12]}"
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return f"{base}/{name}"

    try:
        yield create
    finally:
        from common.db import clear_engines

        clear_engines()  # forget pooled connections; FORCE ends any still open
        with admin.cursor() as cursor:
            for name in created:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def postgres_factory() -> Iterator[Callable[[], str]]:
    """Fresh PostgreSQL databases for one test, dropped afterwards."""
    with postgres_databases() as create:
        yield create


@pytest.fixture
def postgres_url(postgres_factory: Callable[[], str]) -> str:
    return postgres_factory()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on the local PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'admin.db'}"
    return request.getfixturevalue("postgres_url")


def _train_tiny(var_dir: Path, per_intent: int) -> Path:
    result = subprocess.run(
        [str(BIN_DIR / "helpdesk"), "train", "--limit-per-intent", str(per_intent),
         "--out", str(var_dir / "models")],
        env=helpdesk_env(var_dir), cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    models = list((var_dir / "models").glob("*.tar.gz"))
    assert len(models) == 1, models
    return models[0]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small Rasa model for the whole run, trained by the real ``helpdesk train``."""
    return _train_tiny(tmp_path_factory.mktemp("tiny-model"), 12)


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second small model (its own Rasa model id), for promotion and rollback."""
    return _train_tiny(tmp_path_factory.mktemp("other-tiny-model"), 8)


TINY_INTENTS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "terminate_account",
                "apple_pay_or_google_pay", "age_limit"]


def banking_examples(split: str, per_intent: int, intents: list[str] = TINY_INTENTS) -> list:
    """The first ``per_intent`` BANKING77 examples of each of ``intents`` (from data/)."""
    from nlu import datasets

    by_intent: dict[str, list] = {}
    for example in datasets.load_banking77(split):
        if example.intent in intents:
            by_intent.setdefault(example.intent, []).append(example)
    return [e for intent in intents for e in by_intent[intent][:per_intent]]


def scoped_banking_split() -> dict[str, list[tuple[str, str]]]:
    """The tiny intents in scope and 70 other BANKING77 intents as ``out_of_scope``: train,
    validation and held-out rows, with the held-out questions from intents never trained on
    or validated with (so a score must generalise to new kinds of out-of-scope question)."""
    from nlu import datasets

    by_intent: dict[str, list[str]] = {}
    for example in datasets.load_banking77("train"):
        by_intent.setdefault(example.intent, []).append(example.text)
    others = sorted(set(by_intent) - set(TINY_INTENTS))
    seen, unseen = others[:35], others[35:70]
    in_scope = [(intent, by_intent[intent]) for intent in TINY_INTENTS]
    return {
        "train": [(t, i) for i, texts in in_scope for t in texts[:10]]
        + [(by_intent[i][k], "out_of_scope") for i in seen for k in (0, 1)],
        "validation": [(t, i) for i, texts in in_scope for t in texts[10:25]]
        + [(by_intent[i][2], "out_of_scope") for i in seen],
        "held_out": [(t, i) for i, texts in in_scope for t in texts[25:45]]
        + [(by_intent[i][k], "out_of_scope") for i in unseen for k in (0, 1)],
    }


@pytest.fixture(scope="session")
def oos_intent_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A probe-only model of ``scoped_banking_split`` with its given validation split (35
    out-of-scope questions: enough to learn the out-of-scope score), with the ONNX export."""
    from nlu.export import export_onnx
    from nlu.training import TrainParams, train

    split = scoped_banking_split()
    result = train([t for t, _ in split["train"]], [i for _, i in split["train"]],
                   TrainParams(epochs=0), tmp_path_factory.mktemp("oos") / "model",
                   progress=False, validation=([t for t, _ in split["validation"]],
                                               [i for _, i in split["validation"]]))
    export_onnx(result.path, validation=result.validation)
    return result.path


@pytest.fixture(scope="session")
def tiny_intent_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 intents x 15 examples, probe plus one fine-tuning epoch, with the ONNX export."""
    from nlu.export import export_onnx
    from nlu.training import TrainParams, train

    examples = banking_examples("train", 15)
    result = train([e.text for e in examples], [e.intent for e in examples],
                   TrainParams(epochs=1, batch_size=16), tmp_path_factory.mktemp("m") / "model",
                   progress=False)
    export_onnx(result.path, validation=result.validation)
    return result.path


@pytest.fixture(scope="session")
def encoder(tmp_path_factory: pytest.TempPathFactory):  # retrieval.encoder.Encoder
    """The default sentence encoder, loaded once, with its embedding cache in a temp folder."""
    from common.config import shipped_model
    from retrieval.encoder import Encoder

    return Encoder(shipped_model(),
                   cache_path=tmp_path_factory.mktemp("emb") / "embeddings.sqlite")


def make_answer(answer_id: int, title: str, body: str, questions: list[str] | None = None,
                intent: str | None = None, status: str = "published", tags: list[str] | None = None):  # noqa: E501
    """A curated answer for retrieval tests."""
    from retrieval.answers import AnswerData

    return AnswerData(id=answer_id, title=title, body=body, questions=questions or [],
                      intent=intent, status=status, tags=tags or [])


ALLOWED_ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture
def tracker_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A Rasa tracker store on the same kind of database as ``database_url`` (kept apart)."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    return request.getfixturevalue("postgres_factory")()


@pytest.fixture
def client(database_url: str, tracker_url: str,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:  # noqa: F821
    """The admin API in-process over a migrated, seeded database (SQLite and PostgreSQL)."""
    from fastapi.testclient import TestClient

    from admin_api import migrate
    from admin_api.main import create_app
    from common.config import get_settings

    monkeypatch.setenv("HELPDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("HELPDESK_TRACKER_STORE_URL", tracker_url)
    monkeypatch.setenv("HELPDESK_CORS_ORIGINS", ALLOWED_ORIGIN)
    monkeypatch.setenv("HELPDESK_PUBLIC_RASA_URL", "http://127.0.0.1:5005")
    # The proposals' background pass would scan the inbox at moments no test chooses; the
    # tests of proposed answers run it themselves.
    monkeypatch.setenv("HELPDESK_PROPOSAL_CHECK_SECONDS", "0")
    monkeypatch.setenv("HELPDESK_PROMOTION_WATCH_SECONDS", "0")
    monkeypatch.setenv("HELPDESK_METRICS_SYNC_SECONDS", "0")
    get_settings.cache_clear()
    migrate.upgrade(database_url)
    migrate.seed_answers(database_url, PROJECT_ROOT / "data" / "answers")
    with TestClient(create_app()) as test_client:
        yield test_client
    get_settings.cache_clear()


@pytest.fixture
def auth(client: TestClient) -> dict[str, dict[str, str]]:  # noqa: F821
    """Authorization headers of an admin and a staff member of the ``client``'s database."""
    from sqlmodel import Session

    from admin_api.core import security
    from admin_api.models import Role
    from common.db import get_engine

    headers = {}
    with Session(get_engine()) as session:
        for name, role in (("ada", Role.admin), ("sam", Role.staff)):
            user = security.create_user(session, name, role)
            _, secret = security.issue_token(session, user, "test")
            headers[role.value] = {"Authorization": f"Bearer {secret}"}
        session.commit()
    return headers


STARTUP_TIMEOUT = 300


@dataclass
class Served:
    process: subprocess.Popen
    output: Path
    var_dir: Path
    api: str
    rasa: str
    env: dict[str, str]

    @property
    def database_url(self) -> str:
        return self.env["HELPDESK_DATABASE_URL"]

    @property
    def tracker_url(self) -> str:
        return self.env["HELPDESK_TRACKER_STORE_URL"]

    @property
    def actions(self) -> str:
        """The action server (the embedded profile's one)."""
        return f"http://127.0.0.1:{self.env['HELPDESK_ACTIONS_PORT']}"

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def admin_token(self) -> str:
        """The admin token ``helpdesk serve`` printed on its first run."""
        lines = self.text().splitlines()
        [start] = [i for i, line in enumerate(lines) if "Its API token is shown only now" in line]
        return lines[start + 1].strip()

    def say(self, sender: str, message: str) -> list[dict]:
        """A customer's REST turn in the conversation ``sid(sender)``."""
        reply = httpx.post(f"{self.rasa}/webhooks/rest/webhook",
                           json={"sender": sid(sender), "message": message}, timeout=30)
        reply.raise_for_status()
        return reply.json()


def processes_of(var_dir: Path) -> list[int]:
    """Live processes started for this var dir (found by the environment they carry)."""
    marker = f"HELPDESK_VAR_DIR={var_dir}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:  # a zombie is already dead
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


@contextmanager
def serving(root: Path, model: Path) -> Iterator[Callable[..., Served]]:
    """Starts ``helpdesk serve`` stacks under ``root`` on demand, and stops every one of them
    (and anything they started) on the way out, even when a test failed."""
    started: list[Served] = []

    def start(ignore_sigint: bool = False, args: tuple[str, ...] = (), **extra: str) -> Served:
        var_dir = root / f"var{len(started)}"
        ports = {"HELPDESK_API_PORT": free_port(), "HELPDESK_RASA_PORT": free_port(),
                 "HELPDESK_ACTIONS_PORT": free_port()}
        env = helpdesk_env(var_dir, HELPDESK_MODEL=str(model),
                           **{k: str(v) for k, v in ports.items()}, **extra)
        output = root / f"serve{len(started)}.log"
        # A shell starts background jobs with SIGINT ignored; serve must still obey it.
        preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
        process = subprocess.Popen([str(BIN_DIR / "helpdesk"), "serve", *args], env=env,
                                   cwd=PROJECT_ROOT, stdout=output.open("w"),
                                   stderr=subprocess.STDOUT, preexec_fn=preexec)
        scheme = "https" if "scaled" in args else "http"  # the scaled profile's proxy: TLS
        served = Served(process, output, var_dir,
                        f"{scheme}://127.0.0.1:{ports['HELPDESK_API_PORT']}",
                        f"{scheme}://127.0.0.1:{ports['HELPDESK_RASA_PORT']}", env)
        started.append(served)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "Press Ctrl-C to stop." not in served.text():
            assert process.poll() is None, f"serve exited early:\n{served.text()}"
            assert time.monotonic() < deadline, f"serve not ready:\n{served.text()}"
            time.sleep(0.5)
        return served

    try:
        yield start
    finally:
        for served in started:
            if served.process.poll() is None:
                served.process.send_signal(signal.SIGINT)
                try:
                    served.process.wait(60)
                except subprocess.TimeoutExpired:
                    served.process.kill()
            for pid in processes_of(served.var_dir):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def serve(tmp_path: Path, tiny_model: Path) -> Iterator[Callable[..., Served]]:
    with serving(tmp_path, tiny_model) as start:
        yield start


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def redis_url() -> str:
    """The tests' Redis database; the test skips when Redis is not running."""
    if not redis_reachable():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


def rabbitmq_reachable() -> bool:
    """Whether the machines' RabbitMQ answers (the event broker's tests need it)."""
    from urllib.parse import urlsplit

    parts = urlsplit(RABBITMQ_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672),
                                      timeout=2):
            return True
    except OSError:
        return False


def delete_queue(name: str) -> None:
    """Remove a test's event broker queue (durable queues outlive their consumers)."""
    import asyncio

    import aio_pika

    async def run() -> None:
        connection = await aio_pika.connect(RABBITMQ_URL)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(name)

    asyncio.run(run())


def heldout_csv(path: Path) -> Path:
    """A small held-out set for retraining jobs in tests (8 BANKING77 test questions for each
    of the tiny model's intents)."""
    path.write_text("text,category\n" + "".join(
        f'"{e.text}",{e.intent}\n' for e in banking_examples("test", 8)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def console_stack(tmp_path_factory: pytest.TempPathFactory,
                  tiny_model: Path) -> Iterator[Served]:
    """One running product for every console browser test (each uses its own people and
    data), on PostgreSQL (the widget's browser tests run on SQLite), with Rasa streaming its
    events through RabbitMQ to the dashboard when RabbitMQ runs (otherwise the embedded
    default). Proposed answers are recomputed only when asked, checked every second;
    retraining jobs run on tiny data; the watch after a promotion checks every two seconds."""
    root = tmp_path_factory.mktemp("console")
    queue = f"helpdesk-test-{uuid.uuid4().hex[:12]}"
    broker = ({"HELPDESK_EVENT_BROKER_URL": RABBITMQ_URL, "HELPDESK_EVENT_QUEUE": queue}
              if rabbitmq_reachable() else {})
    with postgres_databases() as create, serving(root, tiny_model) as start:
        try:
            yield start(HELPDESK_DATABASE_URL=create(), HELPDESK_TRACKER_STORE_URL=create(),
                        HELPDESK_PROPOSAL_CHECK_SECONDS="1",
                        HELPDESK_PROPOSAL_MIN_NEW="100000",
                        HELPDESK_HELDOUT_CSV=str(heldout_csv(root / "heldout.csv")),
                        HELPDESK_RELIABILITY_FOLDS="2", HELPDESK_RELIABILITY_MAX_EXAMPLES="120",
                        HELPDESK_GATE_MIN_SUPPORT="3", HELPDESK_WORKER_POLL_SECONDS="0.5",
                        HELPDESK_PROMOTION_WATCH_SECONDS="2", **broker)
        finally:
            if broker:
                delete_queue(queue)


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright (the widget must be built)."""
    if not CHROMIUM:
        pytest.skip("Chromium is not installed (scripts/install_test_packages.sh installs it)")
    if not WIDGET.is_file():
        pytest.skip(f"the widget is not built ({WIDGET}); `make setup` builds it with npm")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


# Two topics the shipped answers do not cover, asked in different words, and three one-off
# questions: what an inbox of unanswered questions looks like to the proposed answers.
TRAVEL_INSURANCE = ["Do you offer travel insurance?", "Can I buy travel insurance from you?",
                    "Is travel insurance included with my account?",
                    "Does my card come with travel insurance?",
                    "How do I get travel insurance through the bank?"]
JOINT_ACCOUNT = ["Can I open a joint account with my partner?", "How do I open a joint account?",
                 "Is it possible to have a joint account?", "I want a joint account with my wife",
                 "Do you have joint accounts?"]
ONE_OFF_QUESTIONS = ["What is the weather tomorrow?", "My parcel from the shop is late",
                     "Can you recommend a restaurant?"]
