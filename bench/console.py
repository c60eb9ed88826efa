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
"""

from __future__ import annotations

import argparse
import html
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--inbox", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--live-repeat", type=int, default=10)
    add_smoke_flag(parser)
    args = parser.parse_args()
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
