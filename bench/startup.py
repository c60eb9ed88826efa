"""Startup benchmark: first run (migrate, build, train, serve), warm start, help, baseline.

Runs ``helpdesk serve`` as the operator would, in a temporary var dir on free ports, and
measures wall time until it prints that it is serving. The served model is then scored on
BANKING77's held-out test.csv through Rasa's HTTP parse endpoint: the baseline that the
classifier issue must beat. Prints a table and writes ``bench/results/startup.json``.

    .venv/bin/python bench/startup.py [--help-runs 5] [--eval-limit 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
HELPDESK = str(Path(sys.executable).parent / "helpdesk")
sys.path.insert(0, str(ROOT))

from bench.results_file import add_smoke_flag, results_dir, write_json  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_until_ready(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, float]:
    started = time.monotonic()
    process = subprocess.Popen([HELPDESK, "serve"], env=env, cwd=ROOT, stdout=log.open("w"),
                               stderr=subprocess.STDOUT)
    while "Press Ctrl-C to stop." not in log.read_text(errors="replace"):
        if process.poll() is not None:
            raise SystemExit(f"serve failed:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return process, time.monotonic() - started


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(120)


def _pipeline_names() -> str:
    import yaml

    config = yaml.safe_load((ROOT / "bot" / "config.yml").read_text())
    return " > ".join(
        c["name"] + (f" (epochs {c['epochs']})" if "epochs" in c else "")
        for c in config["pipeline"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--help-runs", type=int, default=5)
    parser.add_argument("--eval-limit", type=int, default=0, help="0 = the whole test set")
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.help_runs, args.eval_limit = 1, 20

    from nlu import datasets

    help_times = []
    for _ in range(args.help_runs):
        t0 = time.monotonic()
        subprocess.run([HELPDESK, "--help"], capture_output=True, check=True)
        help_times.append(time.monotonic() - t0)

    with tempfile.TemporaryDirectory(prefix="helpdesk-bench-") as tmp:
        var = Path(tmp)
        ports = {"HELPDESK_API_PORT": free_port(), "HELPDESK_RASA_PORT": free_port(),
                 "HELPDESK_ACTIONS_PORT": free_port()}
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
        env.update({"HELPDESK_VAR_DIR": str(var), **{k: str(v) for k, v in ports.items()}})

        print("First run (no database, no model): migrate, seed, build, train, serve...")
        process, first_run = serve_until_ready(env, var / "first.log")
        stop(process)
        print(f"  serving after {first_run:.0f}s")
        print("Warm start (model exists)...")
        process, warm_start = serve_until_ready(env, var / "warm.log")
        print(f"  serving after {warm_start:.1f}s")
        try:
            token = (var / "secrets" / "rasa_token").read_text().strip()
            rasa = f"http://127.0.0.1:{ports['HELPDESK_RASA_PORT']}"
            test = datasets.load_banking77("test")
            if args.eval_limit:
                test = test[: args.eval_limit]
            print(f"Scoring the served model on {len(test)} held-out test.csv questions...")
            correct = 0
            latencies = []
            with httpx.Client(timeout=30) as client:
                for example in test:
                    t0 = time.perf_counter()
                    reply = client.post(f"{rasa}/model/parse", params={"token": token},
                                        json={"text": example.text})
                    latencies.append((time.perf_counter() - t0) * 1000)
                    reply.raise_for_status()
                    correct += reply.json()["intent"]["name"] == example.intent
        finally:
            stop(process)
        model_mb = next((var / "models").glob("*.tar.gz")).stat().st_size / 1e6

    result = {
        "benchmark": "startup",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "first_run_s": round(first_run, 1),
        "warm_start_s": round(warm_start, 1),
        "cli_help_median_s": round(statistics.median(help_times), 3),
        "baseline_model": {  # the default first-run model, scored through Rasa
            "pipeline": _pipeline_names(),
            "size_mb": round(model_mb, 1),
            "test_examples": len(test),
            "accuracy_incl_fallback": round(correct / len(test), 4),
            "parse_http_p50_ms": round(percentile(latencies, 0.5), 1),
            "parse_http_p95_ms": round(percentile(latencies, 0.95), 1),
        },
        "targets": {"first_run_s": 900, "warm_start_s": 90},
    }
    out = results_dir(args.smoke) / "startup.json"
    write_json(out, result)

    rows = [
        ("first run to serving (s)", result["first_run_s"], "<= 900"),
        ("warm start to serving (s)", result["warm_start_s"], "<= 90"),
        ("helpdesk --help, median (s)", result["cli_help_median_s"], "~1"),
        ("default model accuracy, test.csv", result["baseline_model"]["accuracy_incl_fallback"],
         ""),
        ("parse over HTTP p50 (ms)", result["baseline_model"]["parse_http_p50_ms"], ""),
        ("parse over HTTP p95 (ms)", result["baseline_model"]["parse_http_p95_ms"], ""),
    ]
    print(f"\n{'measure':<32}{'value':>10}  target")
    for name, value, target in rows:
        print(f"{name:<32}{value:>10}  {target}")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
