"""Swap a newly promoted model into the running Rasa server without stalling replies.

Rasa pulls the production model from the admin API's model server (``models:`` in
``endpoints.yml``, ETag protocol) and then loads it with ``Agent.load_model``, synchronously,
inside its event loop: every conversation waits for the seconds the load takes. Installed
from ``bot/runtime/channels.py`` (Rasa imports the channels before it loads a model), this replaces
that one step: the pulled archive is moved aside and loaded on a thread while the old model
keeps answering; the switch is Rasa's own attribute assignment at the end of ``load_model``.
Conversations live in the tracker store, so they carry on across the swap. The very first
load, at startup, stays synchronous: there is no model to keep answering with.

Every model pulled is also kept as a local copy (``var/rasa/production.tar.gz`` and its ETag),
written to a temporary path and renamed, so a Rasa that restarts while the admin API is down
serves the last production model it had instead of no model at all; its first pull once the
API is back answers 304 (the same ETag) or brings the newer model.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import rasa.core.agent as rasa_agent

from common.config import get_settings
from common.files import copy_atomic, write_atomic

logger = logging.getLogger(__name__)
_rasa_load = rasa_agent._load_and_set_updated_model
_rasa_load_from_server = rasa_agent.load_from_server
_one_at_a_time = threading.Lock()


def keep_local_copy(model_directory: str, fingerprint: str) -> None:
    """Copy the pulled archive (and its ETag) next to Rasa's state, atomically."""
    archives = sorted(Path(model_directory).glob("*.tar.gz"))
    if not archives:
        return
    copy = get_settings().served_model_copy
    copy.parent.mkdir(parents=True, exist_ok=True)
    try:
        copy_atomic(archives[0], copy)
        write_atomic(copy.with_name(copy.name + ".etag"), fingerprint)
    except OSError:
        logger.exception("Could not keep a local copy of the pulled model in %s", copy)


async def _load_from_server_or_copy(agent: Any, model_server: Any) -> Any:
    """Rasa's start: pull from the model server; when that gives no model (the admin API is
    down), load the local copy of the last production model."""
    agent = await _rasa_load_from_server(agent, model_server)
    copy = get_settings().served_model_copy
    etag = copy.with_name(copy.name + ".etag")
    if not agent.is_ready() and copy.is_file():
        fingerprint = etag.read_text(encoding="utf-8").strip() if etag.is_file() else None
        agent.load_model(str(copy), fingerprint)
        logger.warning("The model server gave no model; serving the local copy of the last "
                       "production model (%s) until it is back.", copy)
    return agent


def _load_on_a_thread(agent: Any, model_directory: str, fingerprint: str) -> None:
    keep_local_copy(model_directory, fingerprint)
    if agent.processor is None:
        _rasa_load(agent, model_directory, fingerprint)
        return
    # Rasa deletes model_directory when this returns, so the archive moves somewhere ours.
    keep = Path(tempfile.mkdtemp(prefix="helpdesk-model-"))
    for item in Path(model_directory).iterdir():
        shutil.move(str(item), keep / item.name)
    previous = agent.fingerprint
    agent.fingerprint = fingerprint  # pulls meanwhile get 304 instead of loading it twice

    def load() -> None:
        started = time.monotonic()
        try:
            with _one_at_a_time:
                agent.load_model(keep, fingerprint)
            logger.info("Swapped in model %s in %.1fs; replies kept flowing meanwhile.",
                        agent.model_id, time.monotonic() - started)
        except Exception:
            agent.fingerprint = previous
            logger.exception("Loading the pulled model failed; the previous model stays.")
        finally:
            shutil.rmtree(keep, ignore_errors=True)

    threading.Thread(target=load, name="model-swap", daemon=True).start()


def _keep_then_load(agent: Any, model_directory: str, fingerprint: str) -> None:
    keep_local_copy(model_directory, fingerprint)
    _rasa_load(agent, model_directory, fingerprint)


def install() -> None:
    """``HELPDESK_SWAP_IN_THREAD=0`` keeps Rasa's own blocking load (benchmarks compare)."""
    rasa_agent.load_from_server = _load_from_server_or_copy  # type: ignore[assignment]
    if get_settings().swap_in_thread:
        rasa_agent._load_and_set_updated_model = _load_on_a_thread  # type: ignore[assignment]
    else:
        rasa_agent._load_and_set_updated_model = _keep_then_load  # type: ignore[assignment]
