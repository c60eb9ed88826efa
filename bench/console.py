"""The staff console under a realistic store: how long each screen and action takes on the
server, how long an edit takes to reach the bot, and a hand-off to reach a signed-in console.

Seeds N conversations (3 customer turns each; ``--inbox`` of them with a fallback, so that
many inbox items; 20 waiting for a person) with Rasa's own SQLTrackerStore into SQLite, signs
in to the console like a browser (session cookie and CSRF token), and times:

- screens: the first page of every list, warm (the first request of the run is reported
  apart: the inbox's first scan of the whole tracker store happens there);
- actions: saving an answer, publishing, ignoring and assigning inbox items, approving
  examples, claiming and releasing a hand-off, asking for proposed answers;
- edit to bot: the admin API served over HTTP (uvicorn) and the action server's own retriever
  (``bot.actions.retriever.AdminApiFeed`` following the answers feed); the time from saving
  a new question variant in the console to that retriever answering it with the edited
  answer;
- hand-off to notification: Chromium signed in to the console; the time from a conversation
  being paused in the tracker store to the console's hand-off badge counting it.

    .venv/bin/python bench/console.py [--conversations 10000] [--inbox 2000] [--repeat 30]

Prints a table and writes bench/results/console.json (``p50_ms``/``p95_ms`` per screen and
action, the first requests, and the two end-to-end times).

``--part dashboard`` times the dashboard instead, at 10,000 and 100,000 conversations
(``--sizes``) spread over 60 days, written as Rasa writes them (3 turns each, events rows in
an SQLite tracker store): the first catch-up that folds the whole store into turn facts, an
incremental one after new conversations, the whole dashboard page for 7 and 30 days (every
chart and table is computed by that one request), the summary API, the daily API and a CSV
download; beside them, the baseline: rescanning the tracker store's events for the 7 days
(what the summary did before the facts). Results go under ``dashboard``.

``--part simulator`` times the threshold simulator's replay of about ``--turns`` logged customer
questions (BANKING77's own wordings, up to 3 a conversation, in an SQLite tracker store) through
a production model (``--model``, a Rasa archive; by default the one ``helpdesk serve``
serves, trained first if there is none) and the shipped answers: the whole job as the
worker runs it (reading, loading, scoring), then the page and the outcomes API over the
cached scores. Beside it, the baseline: one search at a time, as the bot searches, on a
sample, scaled to the same number of questions. Results go under ``simulator``.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.admin_db import migrated_with_staff_token  # noqa: E402
from bench.results_file import add_smoke_flag, merge  # noqa: E402
from tests.tracker_seed import Say, save_events, seed  # noqa: E402

WAITING = 20
TARGETS = {"screens_p95_ms": 300, "actions_p95_ms": 150}


def _conversations(n: int, inbox: int) -> dict[str, list[Say]]:
    conversations = {}
    for i in range(n):
        second = (Say(f"question number {i} about my card", "nlu_fallback", 0.3, "m1",
                      f"b{i}-2", actions=["action_answer"],
                      bot=[{"text": "Sorry.", "metadata": {"utter_action": "utter_no_answer"}}])
                  if i < inbox else
                  Say("Is there a fee for top ups?", "top_up_fee", 0.93, "m1", f"b{i}-2",
                      actions=["action_answer"],
                      bot=[{"text": "Top ups are free.",
                            "data": {"custom": {"answer_id": 101, "decision": "answer"}}}]))
        conversations[f"bench-{i}"] = [
            Say("When will my card arrive?", "card_arrival", 0.9, "m1", f"b{i}-1",
                actions=["action_answer"],
                bot=[{"text": "Cards arrive in 5 to 7 working days.",
                      "data": {"custom": {"answer_id": 101, "decision": "answer"}}}]),
            second,
            Say("thanks", "thank_you", 0.97, "m1", f"b{i}-3", actions=["utter_you_are_welcome"],
                bot=[{"text": "You're welcome!"}], pause=i >= n - WAITING),
        ]
    return conversations


def _stats(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {"p50_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
            "n": len(samples)}


def _time(call: Callable[[int], Any], repeat: int) -> dict[str, float]:
    samples = []
    for i in range(repeat):
        started = time.perf_counter()
        reply = call(i)
        samples.append((time.perf_counter() - started) * 1000)
        assert reply.status_code < 400, (reply.status_code, reply.text[:300])
    return _stats(samples)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pause(tracker_url: str, session_id: str) -> None:
    """A customer handed to a person, written as Rasa writes it."""
    from rasa.shared.core.events import ConversationPaused, UserUttered

    save_events(tracker_url, session_id, [
        UserUttered("I want to talk to a person", {"name": "request_human",
                                                   "confidence": 0.99},
                    message_id=f"{session_id}-1"), ConversationPaused()])


def _edit_to_bot(base: str, client: Any, csrf: str, repeat: int, work: Path) -> dict:
    """Save a new question variant in the console; wait until the action server's retriever
    (fed over HTTP, as in production) answers it with the edited answer."""
    from bot.actions.retriever import AdminApiFeed
    from common.config import get_settings
    from retrieval.live import LiveRetriever

    settings = get_settings()
    live = LiveRetriever(lambda: AdminApiFeed(base, 5.0), settings.encoder_models,
                         work / "bot-index", settings.retriever_poll_seconds, name="bench-bot")
    retriever = live.ready(timeout=300)
    assert retriever is not None, "the bot's retriever did not sync"
    samples = []
    for i in range(repeat):
        page = client.get("/console/answers/105").text
        revision = re.search(r'name="base_revision"[^>]*value="(\d+)"', page).group(1)
        questions = re.search(r'<textarea id="questions"[^>]*>(.*?)</textarea>', page,
                              re.S).group(1)
        variant = f"zephyr quokka {i} parcel teleport"
        started = time.perf_counter()
        saved = client.post("/console/answers/105", headers={"X-CSRF-Token": csrf}, data={
            "base_revision": revision, "title": html.unescape(re.search(
                r'id="title" name="title"[^>]*value="([^"]*)"', page).group(1)),
            "body": html.unescape(re.search(r'<textarea id="body"[^>]*>(.*?)</textarea>', page,
                                            re.S).group(1)),
            "questions": html.unescape(questions) + "\n" + variant})
        assert saved.status_code == 200, saved.text[:300]
        while True:
            top = retriever.search(variant, k=1).top
            if top is not None and top.answer_id == 105 and top.similarity > 0.99:
                break
            if time.perf_counter() - started > 30:
                raise RuntimeError("the edit did not reach the bot's retriever in 30 s")
            time.sleep(0.02)
        samples.append((time.perf_counter() - started) * 1000)
    return {**_stats(samples), "poll_seconds": settings.retriever_poll_seconds}


def _handoff_to_badge(base: str, cookie: str, tracker_url: str, repeat: int) -> dict | None:
    """Chromium on the console; pause a new conversation; wait for the badge to count it."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM

    if not CHROMIUM:
        print("no Chromium (scripts/install_test_packages.sh): hand-off to notification skipped")
        return None
    samples = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context()
        context.add_cookies([{"name": "helpdesk_console", "value": cookie,
                              "url": base}])
        page = context.new_page()
        page.goto(base + "/console/training")
        for i in range(repeat):
            page.wait_for_function(
                "() => !document.getElementById('handoff-badge').hidden")
            before = int(page.text_content("#handoff-badge") or 0)
            started = time.perf_counter()
            _pause(tracker_url, f"bench-wait-{i}")
            page.wait_for_function(
                f"() => Number(document.getElementById('handoff-badge').textContent) > {before}",
                timeout=20_000)
            samples.append((time.perf_counter() - started) * 1000)
        browser.close()
    return _stats(samples)


OUTCOME_SHARES = (("answer", 0.70), ("clarify", 0.10), ("fallback", 0.15), ("handoff", 0.05))
DAYS = 60


def _event_rows(first_id: int, conversation: int, start: float, rng: Any) -> list[dict]:
    """One conversation's rows as Rasa's SQLTrackerStore writes them (3 customer turns)."""
    rows: list[dict] = []
    sender = f"dash-{conversation}"
    model = "m1" if start < time.time() - 20 * 86400 else "m2"
    at = start
    for turn in range(3):
        outcome = rng.choices([o for o, _ in OUTCOME_SHARES],
                              [w for _, w in OUTCOME_SHARES])[0]
        confidence = round(rng.random() ** 0.3, 3)
        message = f"d{conversation}-{turn}"
        intent = "nlu_fallback" if outcome == "fallback" else rng.choice(
            ["card_arrival", "top_up_fee", "exchange_rate", "lost_card"])
        user = {"event": "user", "timestamp": at, "metadata": {"model_id": model},
                "text": "When will my card arrive?",
                "parse_data": {"intent": {"name": intent, "confidence": confidence},
                               "entities": [], "text": "When will my card arrive?",
                               "message_id": message, "metadata": {"model_id": model}},
                "input_channel": "socketio", "message_id": message}
        events = [("user", user, intent, None)]
        if outcome == "fallback":
            events += [("action", {"event": "action", "timestamp": at + 0.1,
                                   "name": "utter_no_answer"}, None, "utter_no_answer"),
                       ("bot", {"event": "bot", "timestamp": at + rng.uniform(0.05, 0.6),
                                "text": "Sorry.",
                                "metadata": {"utter_action": "utter_no_answer"}}, None, None)]
        elif outcome == "handoff":
            events += [("bot", {"event": "bot", "timestamp": at + rng.uniform(0.05, 0.6),
                                "text": "Passing you on.",
                                "metadata": {"utter_action": "utter_handoff"}}, None, None),
                       ("pause", {"event": "pause", "timestamp": at + 0.7}, None, None)]
        else:
            custom = {"answer_id": rng.choice([101, 102, 103, 105]), "decision": outcome}
            events += [("action", {"event": "action", "timestamp": at + 0.05,
                                   "name": "action_answer"}, None, "action_answer"),
                       ("bot", {"event": "bot", "timestamp": at + rng.uniform(0.05, 0.6),
                                "text": "Cards arrive in 5 to 7 working days.",
                                "data": {"custom": custom}, "metadata": {}}, None, None)]
        events.append(("action", {"event": "action", "timestamp": at + 0.8,
                                  "name": "action_listen"}, None, "action_listen"))
        for kind, data, intent_name, action in events:
            rows.append({"id": first_id + len(rows), "sender_id": sender, "type_name": kind,
                         "timestamp": data["timestamp"], "intent_name": intent_name,
                         "action_name": action, "data": json.dumps(data)})
        at += rng.uniform(5, 60)
        if outcome == "handoff":
            break
    return rows


def _seed_dashboard(tracker_url: str, conversations: int, offset: int = 0,
                    days: float = DAYS, questions: list[str] | None = None) -> None:
    """Write conversations into the tracker store's events table in bulk (Rasa's own writer
    takes about 10 ms a conversation: hours at this size); with ``questions``, the customers
    ask those, three a conversation, in turn."""
    import random

    from sqlalchemy import insert

    from admin_api.tracker import EVENTS
    from common.db import get_engine

    rng = random.Random(offset + conversations)
    engine = get_engine(tracker_url)
    with engine.begin() as connection:
        next_id = int(connection.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM events")
                      .scalar_one()) + 1
        batch: list[dict] = []
        now = time.time()
        for c in range(offset, offset + conversations):
            rows = _event_rows(next_id, c, now - rng.uniform(0, days * 86400) - 120, rng)
            if questions:
                _ask(rows, questions, 3 * (c - offset))
            next_id += len(rows)
            batch += rows
            if len(batch) > 20_000:
                connection.execute(insert(EVENTS), batch)
                batch = []
        if batch:
            connection.execute(insert(EVENTS), batch)


def _ask(rows: list[dict], questions: list[str], first: int) -> None:
    """The customer turns of ``rows`` ask ``questions`` from ``first`` on."""
    asked = iter(questions[first % len(questions):])
    for row in rows:
        if row["type_name"] == "user":
            data = json.loads(row["data"])
            data["text"] = data["parse_data"]["text"] = next(asked, data["text"])
            row["data"] = json.dumps(data)


def _quiet_product(prefix: str) -> str:
    """Settings for an in-process admin API on fresh SQLite stores, with no background pass
    that would run at moments no timing chooses; returns the tracker store's URL."""
    from common.config import get_settings

    work = Path(tempfile.mkdtemp(prefix=prefix))
    tracker_url = f"sqlite:///{work / 'tracker.db'}"
    os.environ.update({"HELPDESK_DATABASE_URL": f"sqlite:///{work / 'admin.db'}",
                       "HELPDESK_TRACKER_STORE_URL": tracker_url,
                       "HELPDESK_VAR_DIR": str(work / "var"),
                       "HELPDESK_PROPOSAL_CHECK_SECONDS": "0",
                       "HELPDESK_PROMOTION_WATCH_SECONDS": "0",
                       "HELPDESK_METRICS_SYNC_SECONDS": "0"})
    get_settings.cache_clear()
    return tracker_url


def _dashboard(sizes: list[int], repeat: int, smoke: bool) -> None:
    results = {f"sqlite_{size}": _dashboard_size(size, repeat) for size in sizes}
    merge("console", "smoke_dashboard" if smoke else "dashboard",
          {"targets": {"30d_p95_ms": {"10000": 300, "100000": 1000}}, "repeat": repeat,
           **results}, smoke=smoke)


def _dashboard_size(size: int, repeat: int) -> dict[str, Any]:
    """One size: seed, catch up, time the requests."""
    from fastapi.testclient import TestClient
    from sqlmodel import Session

    tracker_url = _quiet_product("bench-dashboard-")
    from admin_api import turn_facts
    from admin_api.main import create_app
    from admin_api.tracker import TrackerStore
    from common.db import get_engine

    secret = migrated_with_staff_token()
    seed(tracker_url, {"dash-first": [Say("hello", "greet", 0.99, "m1", "first")]},
         {"dash-first": 100.0})  # Rasa creates its table
    started = time.perf_counter()
    _seed_dashboard(tracker_url, size)
    print(f"seeded {size} conversations in {time.perf_counter() - started:.0f} s",
          flush=True)
    store = TrackerStore(tracker_url)
    with Session(get_engine()) as session:
        started = time.perf_counter()
        turn_facts.catch_up(session, store)
        first_catch_up = time.perf_counter() - started
        facts = turn_facts.fact_count(session)
    _seed_dashboard(tracker_url, 100, offset=size, days=0.01)
    with Session(get_engine()) as session:
        started = time.perf_counter()
        turn_facts.catch_up(session, store)
        incremental = time.perf_counter() - started
    print(f"first catch-up {first_catch_up:.1f} s ({facts} turns); "
          f"100 new conversations {incremental * 1000:.0f} ms", flush=True)
    app = create_app()
    with TestClient(app) as client:
        signed = client.post("/console/sign-in", data={"token": secret},
                             follow_redirects=False)
        assert signed.status_code == 303, signed.text
        staff = {"Authorization": f"Bearer {secret}"}
        today = time.strftime("%Y-%m-%d", time.gmtime())
        month_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 29 * 86400))
        week = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 7 * 86400))
        calls = {
            "dashboard page 7 days": lambda _i: client.get("/console/dashboard?range=7d"),
            "dashboard page 30 days": lambda _i: client.get("/console/dashboard?range=30d"),
            "summary API 7 days": lambda _i: client.get(
                "/api/v1/metrics/summary", headers=staff),
            "summary API 30 days": lambda _i: client.get(
                "/api/v1/metrics/summary", headers=staff,
                params={"since": f"{month_ago}T00:00:00+00:00"}),
            "daily API 30 days": lambda _i: client.get(
                "/api/v1/metrics/daily", headers=staff,
                params={"first": month_ago, "last": today}),
            "daily CSV 30 days": lambda _i: client.get(
                "/console/dashboard/daily.csv?range=30d"),
        }
        figures = {name: _time(call, repeat) for name, call in calls.items()}
    from datetime import datetime, timezone
    since = datetime.fromisoformat(week).astimezone(timezone.utc).replace(tzinfo=None)
    baseline = []
    for _ in range(max(3, repeat // 5)):
        started = time.perf_counter()
        store.turns(since=since)
        baseline.append((time.perf_counter() - started) * 1000)
    figures["baseline: rescan 7 days of tracker events"] = _stats(baseline)
    result = {
        "conversations": size, "turns": facts, "days": DAYS,
        "first_catch_up_s": round(first_catch_up, 1),
        "catch_up_100_new_conversations_ms": round(incremental * 1000, 1),
        "7d": figures["dashboard page 7 days"], "30d": figures["dashboard page 30 days"],
        "requests": figures}
    print(f"\n{'request':<45} {'p50 ms':>9} {'p95 ms':>9}   ({size} conversations)")
    for name, row in figures.items():
        print(f"{name:<45} {row['p50_ms']:>9} {row['p95_ms']:>9}")
    return result


def _questions(count: int) -> list[str]:
    """Customers' wordings: BANKING77's questions in turn (the same text twice in a batch
    would be encoded once, which would flatter the replay)."""
    from nlu import datasets

    texts = [e.text for split in ("train", "test") for e in datasets.load_banking77(split)]
    return [texts[i % len(texts)] for i in range(count)]


def _production_model(model: str | None) -> Path:
    """``--model``, else the model ``helpdesk serve`` would serve (``HELPDESK_MODEL`` or the
    newest in var/models), trained first (the default bot, as ``helpdesk train``) if none."""
    import subprocess

    from learning.train import model_to_serve

    if model:
        return Path(model)
    found = model_to_serve()
    if found is None:
        print("no model in var/models: training the default bot first", flush=True)
        subprocess.run([sys.executable, "-m", "helpdesk.cli", "train"], check=True, cwd=ROOT)
        found = model_to_serve()
    assert found is not None
    return found


def _simulator(turns: int, repeat: int, model: str | None, smoke: bool) -> None:
    """Seed, replay as the worker does, then time the page and the outcomes API."""
    from datetime import date

    from fastapi.testclient import TestClient
    from sqlmodel import Session, select

    archive = _production_model(model)
    tracker_url = _quiet_product("bench-simulator-")
    from admin_api import simulator, thresholds
    from admin_api.core import security
    from admin_api.main import create_app
    from admin_api.models import Answer, Role
    from admin_api.tracker import TrackerStore
    from common.config import get_settings
    from common.db import get_engine
    from learning import jobs, pipeline, registry
    from learning.models import JobStatus
    from nlu.rasa_component import ArchivedClassifier
    from retrieval.decision import CLARIFY_OPTIONS
    from retrieval.encoder import load_encoder
    from retrieval.retriever import Retriever

    migrated_with_staff_token()
    seed(tracker_url, {"sim-first": [Say("hello", "greet", 0.99, "m1", "first")]},
         {"sim-first": 100.0})  # Rasa creates its table
    # About one customer turn in nine is a hand-off (or ends its conversation early) and is
    # not replayed: seed enough conversations that about ``turns`` questions are.
    questions = _questions(round(turns * 1.12))
    _seed_dashboard(tracker_url, len(questions) // 3, days=6, questions=questions)
    with Session(get_engine()) as session:
        registry.promote(session, registry.register(session, archive), "bench")
        admin = security.create_user(session, "bench-admin", Role.admin)
        _, secret = security.issue_token(session, admin)
        today = time.strftime("%Y-%m-%d", time.gmtime())
        week_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 7 * 86400))
        job = simulator.enqueue(session, "bench", date.fromisoformat(week_ago),
                                date.fromisoformat(today))
        session.commit()
        claimed = jobs.claim(session, "bench")
        assert claimed is not None and claimed.id == job.id
        job_id, params = job.id, dict(claimed.params)
    timings: dict[str, float] = {}
    progress = pipeline.Progress(log=lambda line: print(f"  {line}", flush=True),
                                 timing=lambda step, seconds: timings.__setitem__(step, seconds))
    started = time.perf_counter()
    result = simulator.replay(job_id, params, progress, get_settings())
    total = time.perf_counter() - started
    with Session(get_engine()) as session:
        jobs.finish(session, job_id, JobStatus.succeeded, result)
    replayed = result["turns"]
    print(f"replayed {replayed} questions in {total:.1f} s "
          f"(load {timings.get('load', 0):.1f} s, score {timings.get('score', 0):.1f} s)",
          flush=True)

    # The baseline: what the bot does per message, one classification and one search at a
    # time, on a sample, scaled to the replayed questions.
    sample = questions[:200 if smoke else 1000]
    with Session(get_engine()) as session:
        calibration = thresholds.calibration_of(thresholds.in_force(session))
        answers = [a.to_data() for a in session.exec(select(Answer))]
    settings = get_settings()
    classifier = ArchivedClassifier(archive)
    retriever = Retriever(load_encoder(settings.encoder_models), calibration)
    retriever.replace_all(answers)
    started = time.perf_counter()
    for text in sample:
        retriever.search(text, k=CLARIFY_OPTIONS, intent_ranking=classifier.rankings([text])[0])
    one_by_one = (time.perf_counter() - started) / len(sample) * replayed

    app = create_app()
    with TestClient(app) as client:
        signed = client.post("/console/sign-in", data={"token": secret},
                             follow_redirects=False)
        assert signed.status_code == 303, signed.text
        admin_headers = {"Authorization": f"Bearer {secret}"}
        in_force = client.get("/api/v1/thresholds", headers=admin_headers).json()
        ask = {"without_ranking": {**in_force["without_ranking"], "fallback": 0.7},
               "with_ranking": {**in_force["with_ranking"], "answer": 2.0}}
        page = client.get("/console/simulator")
        assert page.status_code == 200 and 'id="simulator-data"' in page.text
        calls = {
            "simulator page": lambda _i: client.get("/console/simulator"),
            "outcomes API (recount, 50 changed)": lambda _i: client.post(
                "/api/v1/simulator/outcomes", json=ask, headers=admin_headers),
        }
        figures = {name: _time(call, repeat) for name, call in calls.items()}
    store_turns = len(TrackerStore(tracker_url).turns())
    results = {
        "turns_logged": store_turns, "replayed": replayed, "model": archive.name,
        "replay_s": round(total, 1), "load_s": round(timings.get("load", 0.0), 1),
        "score_s": round(timings.get("score", 0.0), 1),
        "questions_per_s": round(replayed / max(timings.get("score", total), 1e-9), 1),
        "baseline_one_at_a_time_s": round(one_by_one, 1),
        "baseline_sample": len(sample),
        "speedup_vs_one_at_a_time": round(one_by_one / max(timings.get("score", total), 1e-9),
                                          2),
        "page_bytes": len(page.content), "repeat": repeat, "requests": figures}
    print(f"\n{'simulator':<45} {'p50 ms':>9} {'p95 ms':>9}   ({replayed} questions)")
    for name, row in figures.items():
        print(f"{name:<45} {row['p50_ms']:>9} {row['p95_ms']:>9}")
    print(f"scoring {results['score_s']} s vs one at a time {results['baseline_one_at_a_time_s']}"
          f" s (x{results['speedup_vs_one_at_a_time']})")
    merge("console", "smoke_simulator" if smoke else "simulator", results, smoke=smoke)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("screens", "dashboard", "simulator"),
                        default="screens")
    parser.add_argument("--turns", type=int, default=30_000,
                        help="simulator: logged customer questions to replay")
    parser.add_argument("--model", default=None,
                        help="simulator: the production model (a Rasa archive)")
    parser.add_argument("--sizes", default="10000,100000",
                        help="dashboard: conversations per run, comma-separated")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--inbox", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--live-repeat", type=int, default=10)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.part == "dashboard":
        sizes = [200] if args.smoke else [int(n) for n in args.sizes.split(",")]
        _dashboard(sizes, 3 if args.smoke else args.repeat, args.smoke)
        return
    if args.part == "simulator":
        _simulator(300 if args.smoke else args.turns, 3 if args.smoke else args.repeat,
                   args.model, args.smoke)
        return
    if args.smoke:
        args.conversations, args.inbox, args.repeat, args.live_repeat = 60, 20, 3, 2
    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    tracker_url = f"sqlite:///{work / 'tracker.db'}"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    os.environ.update({"HELPDESK_DATABASE_URL": f"sqlite:///{work / 'admin.db'}",
                       "HELPDESK_TRACKER_STORE_URL": tracker_url,
                       "HELPDESK_VAR_DIR": str(work / "var"),
                       "HELPDESK_API_PORT": str(port),
                       "HELPDESK_PUBLIC_RATE_PER_MINUTE": "0",
                       "HELPDESK_PROPOSAL_CHECK_SECONDS": "0"})
    import uvicorn
    from fastapi.testclient import TestClient

    from admin_api.main import create_app

    secret = migrated_with_staff_token()
    started = time.perf_counter()
    seed(tracker_url, _conversations(args.conversations, args.inbox),
         {f"bench-{i}": 3600.0 for i in range(args.conversations)})
    print(f"seeded {args.conversations} conversations in {time.perf_counter() - started:.0f} s",
          flush=True)
    app = create_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           ws="none"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    client = TestClient(app, base_url=base)
    signed = client.post("/console/sign-in", data={"token": secret}, follow_redirects=False)
    assert signed.status_code == 303, signed.text
    cookie = signed.cookies["helpdesk_console"]
    csrf = re.search(r'X-CSRF-Token": "([^"]+)"', client.get("/console/answers").text).group(1)
    write = {"X-CSRF-Token": csrf}

    screens = {
        "answers": "/console/answers",
        "answers search": "/console/answers?q=card",
        "inbox (fallbacks tab)": "/console/inbox?reason=fallback",
        "inbox counts": "/console/inbox/counts",
        "proposed answers": "/console/proposals",
        "training examples": "/console/training",
        "conversations": "/console/conversations",
        "conversations filtered": "/console/conversations?intent=card_arrival"
                                  "&confidence_below=0.95",
        "transcript": "/console/conversations/bench-7",
        "hand-off queue": "/console/handoff/queue",
        "hand-off badge": "/console/handoff/badge",
    }
    first: dict[str, dict[str, float]] = {}
    for name, url in screens.items():
        started = time.perf_counter()
        assert client.get(url).status_code == 200, url
        first[name] = {"ms": round((time.perf_counter() - started) * 1000, 1)}
    figures: dict[str, dict[str, float]] = {
        name: _time(lambda _i, url=url: client.get(url), args.repeat)
        for name, url in screens.items()}

    items = [int(m) for m in re.findall(r'<tr id="item-(\d+)"', client.get(
        f"/console/inbox?reason=fallback&limit={2 * args.repeat + 10}").text)]
    assert len(items) >= 2 * args.repeat, f"only {len(items)} inbox items"
    examples: list[int] = []

    def save(i: int) -> Any:
        page = client.get("/console/answers/101").text
        revision = re.search(r'name="base_revision"[^>]*value="(\d+)"', page).group(1)
        return client.post("/console/answers/101", headers=write, data={
            "base_revision": revision, "title": "Card delivery times",
            "body": f"Cards arrive in 5 to 7 working days (edit {i}).",
            "questions": "When will my card arrive?"})

    def assign(i: int) -> Any:
        reply = client.post(f"/console/inbox/{items[args.repeat + i]}/assign-intent",
                            headers=write, data={"intent": "card_arrival"})
        examples.extend(int(m) for m in re.findall(r"training example (\d+)", reply.text))
        return reply

    actions = {
        "answer save": save,
        "answer unpublish/publish": lambda i: client.post(
            f"/console/answers/102/{'unpublish' if i % 2 == 0 else 'publish'}", headers=write),
        "inbox ignore": lambda i: client.post(f"/console/inbox/{items[i]}/ignore",
                                              headers=write),
        "inbox assign intent": assign,
        "hand-off claim": lambda i: client.post(
            f"/console/handoff/bench-{args.conversations - 1 - i % WAITING}/claim",
            headers=write),
        "hand-off release": lambda i: client.post(
            f"/console/handoff/bench-{args.conversations - 1 - i % WAITING}/release",
            headers=write),
        "proposals recompute request": lambda _i: client.post("/console/proposals/refresh",
                                                              headers=write),
    }
    for name, call in actions.items():
        figures[name] = _time(call, args.repeat)
    figures["training approve"] = _time(lambda i: client.post(
        "/console/training/review", headers=write,
        data={"example": str(examples[i]), "decision": "approved"}), min(args.repeat,
                                                                        len(examples)))
    # The time an action is first taken (the answer editor's intents come from Rasa, which
    # is not running here: the cached fallback to the answers' intents is what is timed).
    live = {"edit to bot retriever": _edit_to_bot(base, client, csrf, args.live_repeat, work)}
    badge = _handoff_to_badge(base, cookie, tracker_url, args.live_repeat)
    if badge is not None:
        live["hand-off to console badge"] = badge
    server.should_exit = True

    print(f"\n{'screen or action':<30} {'p50 ms':>9} {'p95 ms':>9}   ({args.conversations} "
          f"conversations, {3 * args.conversations} turns, {args.inbox} inbox items, SQLite)")
    for name, row in figures.items():
        print(f"{name:<30} {row['p50_ms']:>9} {row['p95_ms']:>9}")
    print("\nfirst request of the run (ms): " + ", ".join(
        f"{k} {v['ms']}" for k, v in first.items()))
    for name, row in live.items():
        print(f"{name:<30} {row['p50_ms']:>9} {row['p95_ms']:>9}")
    merge("console", "smoke" if args.smoke else f"sqlite_{args.conversations}", {
        "conversations": args.conversations, "turns": 3 * args.conversations,
        "inbox_items": args.inbox, "repeat": args.repeat, "targets": TARGETS,
        "screens_and_actions": figures, "first_request": first, "end_to_end": live},
        smoke=args.smoke)


if __name__ == "__main__":
    main()
