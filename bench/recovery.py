"""Recovery benchmark: kill -9 each service of a running ``helpdesk serve`` in turn and measure
how long until serve reports it back, while a customer keeps asking an FAQ every half second.

A back-office death (the admin API, the retraining worker) must cost customers nothing; the
action server's costs them an apology for its restart; Rasa's is the only one they can notice
as failed requests. Prints a table and writes ``bench/results/recovery.json``.

    .venv/bin/python bench/recovery.py [--model var/models/X.tar.gz]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import add_smoke_flag, results_dir, write_json
from startup import ROOT, free_port, serve_until_ready, stop

FAQ = "I am still waiting on my card?"
# (name serve prints, a marker of its command line)
SERVICES = [("admin API", b"admin_api.main:app"), ("retraining worker", b"helpdesk.cli"),
            ("action server", b"bot.runtime.action_server"),
            ("Rasa server", b"bot.runtime.rasa_server")]


class Customer(threading.Thread):
    """Asks the FAQ every half second; counts answers, apologies and failures."""

    def __init__(self, rasa: str) -> None:
        super().__init__(daemon=True)
        self.rasa, self.stop_event = rasa, threading.Event()
        self.counts = {"answered": 0, "apology": 0, "failed": 0}

    def run(self) -> None:
        turn = 0
        with httpx.Client(timeout=10) as client:
            while not self.stop_event.is_set():
                turn += 1
                try:
                    reply = client.post(f"{self.rasa}/webhooks/rest/webhook",
                                        json={"sender": uuid.uuid4().hex, "message": FAQ})
                    text = " ".join(r.get("text", "") for r in reply.json())
                    kind = ("answered" if "working days" in text else
                            "apology" if "went wrong" in text else "failed")
                except (httpx.HTTPError, ValueError):
                    kind = "failed"
                self.counts[kind] += 1
                time.sleep(0.5)


def _pid(var_dir: Path, marker: bytes) -> int:
    env_marker = f"HELPDESK_VAR_DIR={var_dir}\0".encode()
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and env_marker in (entry / "environ").read_bytes()
                    and marker in (entry / "cmdline").read_bytes()):
                return int(entry.name)
        except OSError:
            continue
    raise SystemExit(f"no process with {marker!r} for {var_dir}")


def _back_after(log: Path, name: str, seen: int, deadline: float) -> float:
    pattern = re.compile(rf"{re.escape(name)} is back, ([\d.]+)s after it died")
    while time.monotonic() < deadline:
        found = pattern.findall(log.read_text(errors="replace"))
        if len(found) > seen:
            return float(found[-1])
        time.sleep(0.2)
    raise SystemExit(f"{name} did not come back:\n{log.read_text()[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model to serve (default: train one)")
    add_smoke_flag(parser)
    args = parser.parse_args()
    services = SERVICES[:2] if args.smoke else SERVICES  # smoke: the admin API and the worker
    rows = []
    with tempfile.TemporaryDirectory(prefix="helpdesk-recovery-") as tmp:
        var = Path(tmp)
        ports = {"HELPDESK_API_PORT": free_port(), "HELPDESK_RASA_PORT": free_port(),
                 "HELPDESK_ACTIONS_PORT": free_port()}
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
        env.update({"HELPDESK_VAR_DIR": str(var), **{k: str(v) for k, v in ports.items()}})
        if args.model:
            env["HELPDESK_MODEL"] = str(args.model.resolve())
        log = var / "serve.log"
        process, ready = serve_until_ready(env, log)
        print(f"serving after {ready:.0f}s")
        rasa = f"http://127.0.0.1:{ports['HELPDESK_RASA_PORT']}"
        try:
            for name, marker in services:
                time.sleep(5)  # settled: the previous service is back and warm
                customer = Customer(rasa)
                customer.start()
                time.sleep(2)
                os.kill(_pid(var, marker), signal.SIGKILL)
                back = _back_after(log, name, 0, time.monotonic() + 300)
                time.sleep(3)  # and a few turns after it is back
                customer.stop_event.set()
                customer.join()
                rows.append({"service": name, "back_after_s": back, **customer.counts})
                print(f"  {name}: back after {back:.1f}s; customer turns {customer.counts}")
        finally:
            stop(process)

    result = {"benchmark": "recovery", "date": time.strftime("%Y-%m-%d"),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "customer_turn_every_s": 0.5, "services": rows}
    out = results_dir(args.smoke) / "recovery.json"
    write_json(out, result)
    print(f"\n{'service killed (kill -9)':<26}{'back after':>11}{'answered':>10}"
          f"{'apology':>9}{'failed':>8}")
    for row in rows:
        print(f"{row['service']:<26}{row['back_after_s']:>10.1f}s{row['answered']:>10}"
              f"{row['apology']:>9}{row['failed']:>8}")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
