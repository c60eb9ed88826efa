"""The learning loop, end to end, on the running product.

Starts from a bot trained on 10-shot BANKING77 (``helpdesk train --limit-per-intent 10``),
served by ``helpdesk serve``. BANKING77's test queries are split once: an evaluation share,
never shown to anyone, and a replay share sent through the running bot (REST webhook, one
customer each; if that share holds fewer than 500 mistakes, the replay goes on with BANKING77
training queries the 10-shot model never saw). Wrong answers get a thumbs-down through the
public feedback API, and right ones a thumbs-up at ``--thumbs-up-rate``; staff correct 500
mistakes in the review inbox (assign the right intent, approve the example) and approve the
examples customers confirmed, a page at a time; an admin starts retraining with
``POST /api/v1/retrain``; the worker trains, judges against production and promotes; Rasa
pulls the new model while a customer keeps chatting. Accuracy is measured before
and after on the evaluation share through Rasa's ``/model/parse``. Then two deliberately worse
candidates go through the same pipeline and gate: one trained on shuffled labels, one trained
without one intent's examples. Finally Rasa's own (blocking) model load is measured for
comparison, by restarting with ``HELPDESK_SWAP_IN_THREAD=0`` and rolling back.

    .venv/bin/python bench/learning_loop.py [--corrections 500] [--evaluation 1000]
        [--thumbs-up-rate 0.25]

Writes bench/results/learning_loop.json and learning_loop.md. Needs no ../shared data.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
from bench.results_file import add_smoke_flag, results_dir  # noqa: E402
from bench.startup import free_port, serve_until_ready, stop  # noqa: E402

# The chatter's conversations: a random part, then its count (32 hex digits, as Rasa makes).
CHATTER_ID = uuid.uuid4().hex[:24]


class Product:
    """``helpdesk serve`` in its own var dir, on free ports."""

    def __init__(self, var_dir: Path, env: dict[str, str]) -> None:
        self.var_dir, self.env = var_dir, env
        self.api = f"http://127.0.0.1:{env['HELPDESK_API_PORT']}"
        self.rasa = f"http://127.0.0.1:{env['HELPDESK_RASA_PORT']}"
        self.process: subprocess.Popen | None = None

    def start(self, **extra: str) -> None:
        log = self.var_dir.parent / f"serve-{int(time.time())}.log"
        self.process, _ = serve_until_ready({**self.env, **extra}, log)
        self.rasa_token = (self.var_dir / "secrets" / "rasa_token").read_text().strip()

    def admin_token(self) -> str:
        lines = sorted(self.var_dir.parent.glob("serve-*.log"))[0].read_text().splitlines()
        [i] = [n for n, line in enumerate(lines) if "Its API token is shown only now" in line]
        return lines[i + 1].strip()

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def model_id(self) -> str | None:
        return httpx.get(f"{self.rasa}/status", params={"token": self.rasa_token},
                         timeout=30).json().get("model_id")

    def parse(self, client: httpx.Client, text: str) -> str:
        reply = client.post(f"{self.rasa}/model/parse", params={"token": self.rasa_token},
                            json={"text": text})
        reply.raise_for_status()
        return (reply.json().get("intent") or {}).get("name") or ""


class Chatter(threading.Thread):
    """Customers chatting back to back: reply delays, and failures (an error, or no reply)."""

    def __init__(self, product: Product) -> None:
        super().__init__(daemon=True)
        self.product, self.stop = product, threading.Event()
        # (wall clock at the start, seconds to the reply, failed) of every request
        self.samples: list[tuple[float, float, bool]] = []

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            # A new customer each time: one who keeps asking gets handed off to a person
            # after two fallbacks, and a paused conversation's silence is not a failure.
            for n in range(10**9):
                if self.stop.is_set():
                    break
                at, started = time.time(), time.perf_counter()
                try:
                    reply = client.post(f"{self.product.rasa}/webhooks/rest/webhook",
                                        json={"sender": f"{n:08d}{CHATTER_ID}",
                                              "message": "my card still has not arrived"})
                    failed = reply.status_code != 200 or not reply.json()
                except httpx.HTTPError:
                    failed = True
                self.samples.append((at, time.perf_counter() - started, failed))
                time.sleep(0.05)

    def figures(self, since: float = 0.0, until: float = float("inf")) -> dict[str, object]:
        """Replies to requests sent between ``since`` and ``until`` (wall clock)."""
        window = [(at, delay, failed) for at, delay, failed in list(self.samples)
                  if since <= at < until]
        ordered = sorted(delay for _, delay, _ in window)
        slowest = sorted(window, key=lambda sample: -sample[1])[:3]
        return {"requests": len(ordered), "failed": sum(failed for *_, failed in window),
                "slowest_utc": [f"{time.strftime('%H:%M:%S', time.gmtime(at))} {delay:.3f}s"
                                for at, delay, _ in slowest],
                "p50_s": round(statistics.median(ordered), 3) if ordered else None,
                "p95_s": round(ordered[int(0.95 * (len(ordered) - 1))], 3) if ordered else None,
                "max_s": round(ordered[-1], 3) if ordered else None}


def promoted_at(job: dict) -> float:
    """Wall clock of the job's promotion, from its log's UTC time stamp."""
    [line] = [line for line in job["log"].splitlines() if "promoted to production" in line]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    at = calendar.timegm(time.strptime(f"{today} {line[:8]}", "%Y-%m-%d %H:%M:%S"))
    return at if at <= time.time() + 1 else at - 86400  # a job that ran over midnight


def accuracy(product: Product, pairs: list[tuple[str, str]]) -> float:
    with httpx.Client(timeout=60) as client:
        right = sum(product.parse(client, text) == intent for text, intent in pairs)
    return right / len(pairs)


def wait_for(what, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            raise SystemExit(message)
        time.sleep(0.5)


def replay_and_collect(product: Product, replay: list[tuple[str, str]], wanted: int,
                       thumbs_up_rate: float, seed: int) -> tuple[int, int, dict[str, str]]:
    """Send queries until ``wanted`` wrong answers got a thumbs-down; a right answer gets a
    thumbs-up with probability ``thumbs_up_rate``. Returns how many were sent, how many
    thumbs-up were given, and the true intent of each thumbed-down message."""
    truth: dict[str, str] = {}
    sent = ups = 0
    rater = random.Random(seed)
    with httpx.Client(timeout=60) as client:
        for text, intent in replay:
            if len(truth) >= wanted:
                break
            sender = uuid.uuid4().hex  # the channel accepts unguessable ids only
            client.post(f"{product.rasa}/webhooks/rest/webhook",
                        json={"sender": sender, "message": text}).raise_for_status()
            sent += 1
            tracker = client.get(f"{product.rasa}/conversations/{sender}/tracker",
                                 params={"token": product.rasa_token}).json()
            user = [e for e in tracker["events"] if e["event"] == "user"][-1]
            right = (user.get("parse_data", {}).get("intent") or {}).get("name") == intent
            if right and rater.random() >= thumbs_up_rate:
                continue
            reply = client.post(f"{product.api}/api/v1/feedback",
                                json={"session_id": sender, "message_id": user["message_id"],
                                      "rating": "up" if right else "down",
                                      "comment": None if right else "wrong answer"})
            reply.raise_for_status()
            if right:
                ups += 1
            else:
                truth[sender] = intent
    return sent, ups, truth


def staff_approve_confirmed(product: Product, staff: dict) -> int:
    """Staff work the queue of customer-confirmed examples, a page at a time."""
    approved = 0
    with httpx.Client(timeout=120, headers=staff) as client:
        while True:
            page = client.get(f"{product.api}/api/v1/training-examples",
                              params={"source": "confirmed", "status": "pending",
                                      "limit": 500}).json()
            if not page["items"]:
                return approved
            reply = client.post(f"{product.api}/api/v1/training-examples/review",
                                json={"ids": [e["id"] for e in page["items"]],
                                      "status": "approved"})
            reply.raise_for_status()
            approved += len(reply.json()["changed"])


def staff_correct(product: Product, truth: dict[str, str], staff: dict) -> int:
    """Staff work the inbox's thumbs-down items: right intent, then approve the example."""
    corrected = 0
    with httpx.Client(timeout=120, headers=staff) as client:
        while True:
            page = client.get(f"{product.api}/api/v1/inbox",
                              params={"reason": "thumbs_down", "limit": 200}).json()
            if not page["items"]:
                return corrected
            for item in page["items"]:
                intent = truth.get(item["session_id"])
                if intent is None:
                    client.post(f"{product.api}/api/v1/inbox/{item['id']}/ignore")
                    continue
                example = client.post(f"{product.api}/api/v1/inbox/{item['id']}/assign-intent",
                                      json={"intent": intent})
                example.raise_for_status()
                client.post(f"{product.api}/api/v1/training-examples/"
                            f"{example.json()['id']}/approve").raise_for_status()
                corrected += 1


def run_job(product: Product, admin: dict, body: dict) -> dict:
    with httpx.Client(timeout=60, headers=admin) as client:
        job = client.post(f"{product.api}/api/v1/retrain", json=body)
        job.raise_for_status()
        job_id = job.json()["id"]
        while True:
            state = client.get(f"{product.api}/api/v1/jobs/{job_id}").json()
            if state["status"] in ("succeeded", "failed", "cancelled"):
                return state
            time.sleep(2)


def worse_candidates(var_dir: Path, env: dict[str, str], limit: int,
                     promote: bool = True) -> dict[str, dict]:
    """The two bad candidates, through the same pipeline and gate (in this process)."""
    os.environ.update({k: v for k, v in env.items() if k.startswith(("HELPDESK_", "HF_"))})

    from common.config import get_settings
    from learning import pipeline

    def shuffled(examples: dict[str, list[str]]) -> dict[str, list[str]]:
        pairs = [(t, i) for i, ts in examples.items() for t in ts]
        labels = [i for _, i in pairs]
        random.Random(7).shuffle(labels)
        out: dict[str, list[str]] = {i: [] for i in examples}
        for (text, _), label in zip(pairs, labels, strict=True):
            out[label].append(text)
        return out

    def without(intent: str):
        return lambda examples: {i: ([] if i == intent else ts) for i, ts in examples.items()}

    settings = get_settings()
    results = {}
    for name, transform in (("corrupted", shuffled), ("subtle", without("card_arrival"))):
        started = time.monotonic()
        result = pipeline.run({"limit_per_intent": limit, "promote": promote},
                             pipeline.Progress(log=lambda line, n=name: print(f"  [{n}] {line}")),
                             settings, var_dir / "retrain" / name, settings.registry_dir,
                             actor=f"bench {name}", transform=transform)
        results[name] = {"rejected": not result["promoted"],
                         "reasons": result["gate"]["reasons"],
                         "accuracy": result["accuracy"],
                         "production_accuracy": result["production_accuracy"],
                         "wall_s": round(time.monotonic() - started, 1)}
    return results


def _query_sets(args: argparse.Namespace,
                work: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]], int]:
    """The never-replayed evaluation queries (also the gate's held-out set, written to
    ``work/evaluation.csv``) and the queries replayed through the bot."""
    from common.config import get_settings
    from learning import data_build
    from nlu import datasets

    test = [(e.text, e.intent) for e in datasets.load_banking77("test")]
    random.Random(args.seed).shuffle(test)
    evaluation, replay = test[: args.evaluation], test[args.evaluation:]
    # A 10-shot model is right often enough that the rest of test.csv may hold fewer than
    # 500 mistakes: then the replay goes on with training queries the model never saw.
    seed, _ = data_build.collect_examples(get_settings().data_dir, args.shots)
    seen = {t.lower() for texts in seed.values() for t in texts}
    unseen = [(e.text, e.intent) for e in datasets.load_banking77("train")
              if e.text.lower() not in seen]
    random.Random(args.seed).shuffle(unseen)
    replay_test = len(replay)
    replay += unseen
    # The gate judges on the same never-replayed share. Judged on the rest of test.csv, it
    # would see only the replayed queries production got right (the wrong ones were corrected
    # and trained on), a sample biased towards production.
    heldout_csv = work / "evaluation.csv"
    with heldout_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        writer.writerows(evaluation)
    return evaluation, replay, replay_test


def _feedback_and_retraining(product: Product, args: argparse.Namespace, env: dict[str, str],
                             var_dir: Path, evaluation: list, replay: list, replay_test: int,
                             admin: dict[str, str], staff: dict[str, str],
                             figures: dict[str, object]) -> tuple[str, dict, dict]:
    """Steps 2-7: accuracy before, the customers' feedback, staff review, retraining through
    the job API while a customer chats, accuracy after, and two worse candidates."""
    print("2. accuracy before", flush=True)
    figures["accuracy_before"] = round(accuracy(product, evaluation), 4)
    print(f"   {figures['accuracy_before']}\n3. replaying queries", flush=True)
    started = time.monotonic()
    sent, ups, truth = replay_and_collect(product, replay, args.corrections,
                                          args.thumbs_up_rate, args.seed)
    figures.update({"replayed": sent, "replayed_from_test": min(sent, replay_test),
                    "thumbs_down": len(truth), "thumbs_up": ups,
                    "replay_s": round(time.monotonic() - started, 1)})
    print(f"   {sent} sent, {len(truth)} wrong, {ups} thumbs-up\n4. staff review",
          flush=True)
    started = time.monotonic()
    figures["corrected"] = staff_correct(product, truth, staff)
    figures["confirmed_approved"] = staff_approve_confirmed(product, staff)
    figures["staff_api_s"] = round(time.monotonic() - started, 1)
    print(f"   {figures['corrected']}\n5. retraining through the job API", flush=True)
    before_model = product.model_id()
    chatter = Chatter(product)
    chatter.start()
    started = time.monotonic()
    job = run_job(product, admin, {"limit_per_intent": args.shots})
    figures["retrain_job_s"] = round(time.monotonic() - started, 1)
    figures["job_timings_s"] = job["timings"]
    figures["job_steps_utc"] = [line for line in job["log"].splitlines()
                                if "step:" in line or "promoted" in line]
    if job["status"] != "succeeded" or not job["result"].get("promoted"):
        raise SystemExit(f"retraining did not promote: {json.dumps(job)[:4000]}")
    new_model = job["result"]["model_id"]
    wait_for(lambda: product.model_id() == new_model, 120, "Rasa never swapped")
    figures["swap_after_promotion_s"] = round(time.monotonic() - started
                                              - figures["retrain_job_s"], 1)
    time.sleep(5)
    chatter.stop.set()
    chatter.join()
    # Training (up to the promotion) and the swap (from the promotion until 5 s after
    # Rasa reports the new model) are judged apart: the 2-second bound is the swap's.
    promotion = promoted_at(job)
    training_window = chatter.figures(until=promotion)
    swap = chatter.figures(since=promotion)
    swapped = [line for line in (var_dir / "logs" / "rasa.log").read_text().splitlines()
               if "Swapped in model" in line]
    figures.update({"reply_latency_during_retraining": training_window,
                    "reply_latency_during_swap": swap, "swap_log": swapped[-1:],
                    "swap_max_reply_delay_s": swap["max_s"],
                    "swap_failed_requests": swap["failed"],
                    "gate_of_promoted": job["result"]["gate"]})
    print("6. accuracy after", flush=True)
    figures["accuracy_after"] = round(accuracy(product, evaluation), 4)
    figures["accuracy_gain_points"] = round(
        100 * (figures["accuracy_after"] - figures["accuracy_before"]), 2)
    print(f"   {figures['accuracy_after']}\n7. two worse candidates", flush=True)
    # A smoke run's tiny data cannot tell a worse candidate from a good one: never promote
    # them there, so that the rollback below still finds the model it started from.
    bad = worse_candidates(var_dir, env, args.shots, promote=not args.smoke)
    figures["worse_candidates"] = bad
    figures["corrupted_candidate_rejected"] = bad["corrupted"]["rejected"]
    figures["subtle_candidate_rejected"] = bad["subtle"]["rejected"]

    return before_model, bad, training_window


def _record(figures: dict, args: argparse.Namespace, bad: dict, training_window: dict) -> None:
    """The figures as JSON and a markdown table (under results/smoke/ for a smoke run)."""
    results = results_dir(args.smoke)
    figures["date"] = time.strftime("%Y-%m-%d %H:%M")
    figures["machine"] = {"cpus": os.cpu_count()}
    (results / "learning_loop.json").write_text(json.dumps(figures, indent=2, sort_keys=True)
                                                + "\n")
    rows = [
        ("accuracy before (10-shot model), held-out", figures["accuracy_before"]),
        ("accuracy after one loop", figures["accuracy_after"]),
        ("gain (points)", figures["accuracy_gain_points"]),
        ("queries replayed / thumbs-down / corrected",
         f"{figures['replayed']} / {figures['thumbs_down']} / {figures['corrected']}"),
        (f"thumbs-up (rate {args.thumbs_up_rate:g} of right answers) / confirmed examples "
         "approved", f"{figures['thumbs_up']} / {figures['confirmed_approved']}"),
        ("shuffled-labels candidate rejected", figures["corrupted_candidate_rejected"]),
        ("candidate without one intent rejected", figures["subtle_candidate_rejected"]),
        ("swap: failed requests", figures["swap_failed_requests"]),
        ("swap: max reply delay (s), ours", figures["swap_max_reply_delay_s"]),
        ("swap: max reply delay (s), Rasa's blocking load",
         figures["rasa_blocking_swap_max_reply_delay_s"]),
        ("reply p50 / p95 / max (s), failed, while the job trained (until the promotion)",
         f"{training_window['p50_s']} / {training_window['p95_s']} / "
         f"{training_window['max_s']}, {training_window['failed']}"),
        ("retraining job wall time (s)", figures["retrain_job_s"]),
        ("whole loop wall time (s)", figures["loop_wall_s"]),
    ]
    table = "\n".join(["| measure | value |", "|---|---|"]
                      + [f"| {name} | {value} |" for name, value in rows])
    reasons = "\n".join(f"- {name}: " + "; ".join(bad[name]["reasons"]) for name in bad)
    (results / "learning_loop.md").write_text(
        f"# Learning loop ({figures['date']}, {os.cpu_count()} CPUs)\n\n{table}\n\n"
        f"Gate reasons for the worse candidates:\n\n{reasons}\n")
    print(table)
    print(reasons)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corrections", type=int, default=500)
    parser.add_argument("--evaluation", type=int, default=1000,
                        help="test queries kept for measuring accuracy (never replayed)")
    parser.add_argument("--thumbs-up-rate", type=float, default=0.25,
                        help="share of right answers that get a thumbs-up (every wrong answer "
                             "gets a thumbs-down)")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--seed", type=int, default=13)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:  # the whole loop on a bot that knows a couple of examples per intent
        args.shots, args.corrections, args.evaluation = 2, 20, 40

    work = Path(tempfile.mkdtemp(prefix="helpdesk-learning-loop-"))
    var_dir = work / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update({"HELPDESK_VAR_DIR": str(var_dir), "HF_HUB_OFFLINE": "1",
                "RASA_TELEMETRY_ENABLED": "false", "PYTHONUNBUFFERED": "1",
                "HELPDESK_API_PORT": str(free_port()), "HELPDESK_RASA_PORT": str(free_port()),
                "HELPDESK_ACTIONS_PORT": str(free_port()),
                "HELPDESK_PUBLIC_RATE_PER_MINUTE": "0",
                # It replays thousands of turns as fast as the bot answers: no person does.
                "HELPDESK_SENDER_MESSAGES_PER_MINUTE": "0",
                "HELPDESK_ADDRESS_MESSAGES_PER_MINUTE": "0"})
    figures: dict[str, object] = {"shots": args.shots, "seed": args.seed,
                                  "thumbs_up_rate": args.thumbs_up_rate}
    loop_started = time.monotonic()

    print(f"1. training the {args.shots}-shot model ({work})", flush=True)
    started = time.monotonic()
    subprocess.run([str(BIN / "helpdesk"), "train", "--limit-per-intent", str(args.shots)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    figures["initial_train_s"] = round(time.monotonic() - started, 1)

    evaluation, replay, replay_test = _query_sets(args, work)
    figures["evaluation_queries"] = len(evaluation)
    env["HELPDESK_HELDOUT_CSV"] = str(work / "evaluation.csv")

    product = Product(var_dir, env)
    try:
        product.start()
        admin = {"Authorization": f"Bearer {product.admin_token()}"}
        staff_token = subprocess.run([str(BIN / "helpdesk"), "users", "create", "sam", "--role",
                                      "staff"], cwd=ROOT, env=env, check=True,
                                     capture_output=True, text=True).stdout
        staff = {"Authorization": "Bearer " + next(w for w in staff_token.split()
                                                   if w.startswith("lh_"))}
        before_model, bad, training_window = _feedback_and_retraining(
            product, args, env, var_dir, evaluation, replay, replay_test, admin, staff, figures)
        figures["loop_wall_s"] = round(time.monotonic() - loop_started, 1)
        product.stop()

        print("8. Rasa's own blocking load, for comparison (rollback)", flush=True)
        product.start(HELPDESK_SWAP_IN_THREAD="0")
        chatter = Chatter(product)
        chatter.start()
        time.sleep(3)
        httpx.post(f"{product.api}/api/v1/models/rollback", headers=admin,
                   timeout=30).raise_for_status()
        wait_for(lambda: product.model_id() == before_model, 120, "rollback never arrived")
        time.sleep(5)
        chatter.stop.set()
        chatter.join()
        blocking = chatter.figures()
        figures["rasa_blocking_swap_max_reply_delay_s"] = blocking["max_s"]
        figures["rasa_blocking_swap_failed_requests"] = blocking["failed"]
        figures["rollback_restored_previous_model"] = product.model_id() == before_model
    finally:
        product.stop()

    _record(figures, args, bad, training_window)


if __name__ == "__main__":
    main()
