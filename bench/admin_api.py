"""Admin API latency over a realistic tracker store: how long staff wait for each screen.

Seeds N conversations (3 customer turns each: an answer, a clarification or fallback, a thank
you) with Rasa's own SQLTrackerStore into SQLite, then times the routes staff use all day,
in-process (FastAPI's TestClient, so the figures are the app's, not the network's).

    .venv/bin/python bench/admin_api.py [--conversations 2000] [--repeat 30]

Prints a table and writes bench/results/admin_api.json (medians and p95 in milliseconds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.admin_db import migrated_with_staff_token  # noqa: E402
from bench.results_file import add_smoke_flag, merge  # noqa: E402
from tests.tracker_seed import Say, seed  # noqa: E402


def _conversations(n: int) -> dict[str, list[Say]]:
    conversations = {}
    for i in range(n):
        unsure = i % 3 == 0
        conversations[f"bench-{i}"] = [
            Say("When will my card arrive?", "card_arrival", 0.9, "m1", f"b{i}-1",
                actions=["action_answer"],
                bot=[{"text": "Cards arrive in 5 to 7 working days.",
                      "data": {"custom": {"answer_id": 101, "decision": "answer"}}}]),
            Say(f"question number {i} about my card", "card_arrival", 0.4 if unsure else 0.8,
                "m1", f"b{i}-2", actions=["action_answer"],
                bot=[{"text": "Please pick one:", "data": {"custom": {"decision": "clarify"}}}]
                if unsure else [{"text": "Sorry.", "metadata": {"utter_action":
                                                                 "utter_no_answer"}}]),
            Say("thanks", "thank_you", 0.97, "m1", f"b{i}-3", actions=["utter_you_are_welcome"],
                bot=[{"text": "You're welcome!"}]),
        ]
    return conversations


def _time(call, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        reply = call()
        samples.append((time.perf_counter() - started) * 1000)
        assert reply.status_code < 400, reply.text[:300]
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.conversations, args.repeat = 50, 3
    work = Path(tempfile.mkdtemp(prefix="bench-admin-"))
    os.environ.update({"HELPDESK_DATABASE_URL": f"sqlite:///{work / 'admin.db'}",
                       "HELPDESK_TRACKER_STORE_URL": f"sqlite:///{work / 'tracker.db'}",
                       "HELPDESK_PUBLIC_RATE_PER_MINUTE": "0"})
    from fastapi.testclient import TestClient

    from admin_api.main import create_app

    secret = migrated_with_staff_token()
    started = time.perf_counter()
    seed(os.environ["HELPDESK_TRACKER_STORE_URL"], _conversations(args.conversations),
         {f"bench-{i}": 3600.0 for i in range(args.conversations)})
    print(f"seeded {args.conversations} conversations in {time.perf_counter() - started:.0f} s",
          flush=True)
    headers = {"Authorization": f"Bearer {secret}"}
    figures: dict[str, dict[str, float]] = {}
    with TestClient(create_app()) as client:
        started = time.perf_counter()
        first = client.get("/api/v1/inbox", headers=headers)
        figures["inbox first scan (once)"] = {
            "p50_ms": round((time.perf_counter() - started) * 1000, 1),
            "p95_ms": round((time.perf_counter() - started) * 1000, 1)}
        print(f"inbox items: {first.json()['total']}")
        revision = [client.get("/api/v1/answers/101", headers=headers).json()["revision"]]

        def edit():
            reply = client.patch("/api/v1/answers/101", headers=headers, json={
                "base_revision": revision[0], "body": f"Edited at {time.perf_counter()}"})
            revision[0] = reply.json()["revision"]
            return reply

        calls = {
            "answers list (page of 50)": lambda: client.get("/api/v1/answers", headers=headers),
            "answers search q=card": lambda: client.get("/api/v1/answers", headers=headers,
                                                        params={"q": "card"}),
            "answer edit (PATCH)": edit,
            "answers feed (changes)": lambda: client.get("/api/v1/answers/changes",
                                                         params={"since": 0}),
            "feedback intake": lambda: client.post("/api/v1/feedback", json={
                "session_id": "bench-1", "message_id": "b1-1", "rating": "down"}),
            "inbox (steady)": lambda: client.get("/api/v1/inbox", headers=headers),
            "conversations list": lambda: client.get("/api/v1/conversations", headers=headers),
            "conversations search": lambda: client.get("/api/v1/conversations", headers=headers,
                                                       params={"q": "number 1999"}),
            "transcript": lambda: client.get("/api/v1/conversations/bench-7", headers=headers),
            "metrics summary (7 days)": lambda: client.get("/api/v1/metrics/summary",
                                                           headers=headers),
            "prometheus /metrics": lambda: client.get("/metrics"),
        }
        for name, call in calls.items():
            figures[name] = _time(call, args.repeat)
    print(f"\n{'route':<30} {'p50 ms':>9} {'p95 ms':>9}   ({args.conversations} conversations,"
          f" {3 * args.conversations} turns, SQLite)")
    for name, row in figures.items():
        print(f"{name:<30} {row['p50_ms']:>9} {row['p95_ms']:>9}")
    merge("admin_api", f"sqlite_{args.conversations}", {
        "conversations": args.conversations, "turns": 3 * args.conversations,
        "repeat": args.repeat, "routes": figures}, smoke=args.smoke)


if __name__ == "__main__":
    main()
