"""Swap a newly promoted model into the running Rasa server without stalling replies.

Rasa pulls the production model from the admin API's model server (``models:`` in
``endpoints.yml``, ETag protocol) and then loads it with ``Agent.load_model``, synchronously,
inside its event loop: every conversation waits for the seconds the load takes. Installed
from ``bot/channels.py`` (Rasa imports the channels before it loads a model), this replaces
that one step: the pulled archive is moved aside and loaded on a thread while the old model
keeps answering; the switch is Rasa's own attribute assignment at the end of ``load_model``.
Conversations live in the tracker store, so they carry on across the swap. The very first
load, at startup, stays synchronous: there is no model to keep answering with.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import rasa.core.agent as rasa_agent

logger = logging.getLogger(__name__)
_rasa_load = rasa_agent._load_and_set_updated_model
_one_at_a_time = threading.Lock()


def _load_on_a_thread(agent: Any, model_directory: str, fingerprint: str) -> None:
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


def install() -> None:
    """``HELPDESK_SWAP_IN_THREAD=0`` keeps Rasa's own blocking load (benchmarks compare)."""
    if os.environ.get("HELPDESK_SWAP_IN_THREAD", "1") != "0":
        rasa_agent._load_and_set_updated_model = _load_on_a_thread  # type: ignore[assignment]
