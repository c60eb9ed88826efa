"""Training a Rasa model from the built project, and finding the model to serve."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import yaml
from tqdm import tqdm

from common.config import get_settings
from common.processes import die_with_parent

_COMPONENT_DONE = re.compile(
    r"(?:Finished training component|Restored component) '(?P<name>\w+)'"
)
_COMPONENT_START = re.compile(r"Starting to train component '(?P<name>\w+)'")


class TrainingFailed(RuntimeError):
    pass


def latest_model(models_dir: Path | None = None) -> Path | None:
    """The newest finished model (``*.tar.gz``; unfinished runs live in hidden folders)."""
    folder = models_dir or get_settings().models_dir
    models = sorted(folder.glob("*.tar.gz"), key=lambda p: (p.stat().st_mtime, p.name))
    return models[-1] if models else None


def model_to_serve() -> Path | None:
    """``HELPDESK_MODEL`` if set, else the newest model in ``var/models``."""
    configured = get_settings().model
    if configured:
        path = Path(configured).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"HELPDESK_MODEL={configured}: no such model file")
        return path
    return latest_model()


def _component_count(build_dir: Path) -> int:
    config = yaml.safe_load((build_dir / "config.yml").read_text(encoding="utf-8")) or {}
    return len(config.get("pipeline") or []) + len(config.get("policies") or [])


def _kill_when(stop: threading.Event, finished: threading.Event,
               process: subprocess.Popen[str]) -> None:
    while not finished.is_set():
        if stop.wait(0.5):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            return


def _run_with_progress(command: list[str], env: dict[str, str], log_path: Path,
                       components: int, stop: threading.Event | None = None,
                       on_progress: Callable[[str, float], None] | None = None) -> int:
    """Run Rasa with its full output in ``log_path`` and a progress bar over its components.

    The bar counts pipeline and policy entries; entries that do not train (a tokenizer, the
    fallback classifier) have no log line, so the bar is completed when the model is written.
    Setting ``stop`` kills the training process group (a cancelled retraining job).
    """
    bar = tqdm(total=components, desc="loading Rasa and the data", unit="component",
               dynamic_ncols=True)
    finished = threading.Event()
    with log_path.open("a", encoding="utf-8") as log, subprocess.Popen(
        command, env=env, cwd=get_settings().var_dir, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
        preexec_fn=die_with_parent(signal.SIGKILL),
    ) as process:
        assert process.stdout is not None
        if stop is not None:
            threading.Thread(target=_kill_when, args=(stop, finished, process),
                             daemon=True).start()
        for line in process.stdout:
            log.write(line)
            if started := _COMPONENT_START.search(line):
                bar.set_description(f"training {started['name']}")
            elif line.startswith("epoch ") and "validation accuracy" in line:
                bar.set_description(f"fine-tuning, {line.strip()}")
            elif done := _COMPONENT_DONE.search(line):
                bar.update(1)
                bar.set_description(f"trained {done['name']}")
                if on_progress is not None:
                    on_progress(f"trained {done['name']}", bar.n / max(1, bar.total))
        returncode = process.wait()
        finished.set()
    if returncode == 0:
        bar.update(bar.total - bar.n)
        bar.set_description("model written")
    bar.close()
    return returncode


def train(build_dir: Path, out_dir: Path | None = None, force: bool = False,
          log_path: Path | None = None, stop: threading.Event | None = None,
          on_progress: Callable[[str, float], None] | None = None) -> Path:
    """Run ``rasa train`` on a built project; the model appears in ``out_dir`` only when whole.

    Rasa writes the archive in place, so it trains into a hidden staging folder and the
    finished file is renamed into ``out_dir``: an interrupted run never leaves a half model.
    """
    out_dir = (out_dir or get_settings().models_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".training-", dir=out_dir))
    command = [
        sys.executable, "-m", "rasa", "train",
        "--config", str(build_dir / "config.yml"),
        "--domain", str(build_dir / "domain"),
        "--data", str(build_dir / "data"),
        "--out", str(staging),
    ]
    if force:
        command.append("--force")
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("RASA_CACHE_DIRECTORY", str(get_settings().var_dir / "rasa-cache"))
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    log_path = log_path or get_settings().var_dir / "logs" / "train.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        returncode = _run_with_progress(command, env, log_path, _component_count(build_dir),
                                        stop, on_progress)
        if stop is not None and stop.is_set():
            raise TrainingFailed("training was cancelled")
        produced = sorted(staging.glob("*.tar.gz"))
        if returncode != 0 or not produced:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
            raise TrainingFailed(
                f"rasa train failed with exit code {returncode}. Last lines of {log_path}:\n{tail}"
            )
        final = out_dir / produced[0].name
        produced[0].rename(final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
