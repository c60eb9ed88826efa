"""Training a Rasa model from the built project, and finding the model to serve."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bot import settings


class TrainingFailed(RuntimeError):
    pass


def latest_model(models_dir: Path | None = None) -> Path | None:
    """The newest finished model (``*.tar.gz``; unfinished runs live in hidden folders)."""
    folder = models_dir or settings.models_dir()
    models = sorted(folder.glob("*.tar.gz"), key=lambda p: (p.stat().st_mtime, p.name))
    return models[-1] if models else None


def model_to_serve() -> Path | None:
    """``HELPDESK_MODEL`` if set, else the newest model in ``var/models``."""
    configured = os.environ.get("HELPDESK_MODEL")
    if configured:
        path = Path(configured).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"HELPDESK_MODEL={configured}: no such model file")
        return path
    return latest_model()


def train(build_dir: Path, out_dir: Path | None = None, force: bool = False) -> Path:
    """Run ``rasa train`` on a built project; the model appears in ``out_dir`` only when whole.

    Rasa writes the archive in place, so it trains into a hidden staging folder and the
    finished file is renamed into ``out_dir``: an interrupted run never leaves a half model.
    """
    out_dir = (out_dir or settings.models_dir()).resolve()
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
    env.setdefault("RASA_CACHE_DIRECTORY", str(settings.var_dir() / "rasa-cache"))
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    try:
        result = subprocess.run(command, env=env, cwd=settings.var_dir())
        produced = sorted(staging.glob("*.tar.gz"))
        if result.returncode != 0 or not produced:
            raise TrainingFailed(f"rasa train failed with exit code {result.returncode}")
        final = out_dir / produced[0].name
        produced[0].rename(final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
