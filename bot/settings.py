"""Settings of the bot's processes (Rasa server, action server), from ``HELPDESK_*`` variables."""

from __future__ import annotations

import os
from pathlib import Path

BOT_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BOT_DIR.parent


def var_dir() -> Path:
    return Path(os.environ.get("HELPDESK_VAR_DIR", PROJECT_ROOT / "var")).resolve()


def generated_dir() -> Path:
    """Where ``helpdesk data build`` writes the Rasa training project."""
    return Path(os.environ.get("HELPDESK_BUILD_DIR", BOT_DIR / "generated")).resolve()


def models_dir() -> Path:
    return var_dir() / "models"


def served_model_copy() -> Path:
    """Rasa's local copy of the last production model it pulled (with ``.etag`` beside it)."""
    return var_dir() / "rasa" / "production.tar.gz"


def admin_api_url() -> str:
    """How the action server reaches the admin API (over HTTP only, never by import)."""
    return os.environ.get("HELPDESK_ADMIN_API_URL", "http://127.0.0.1:8000").rstrip("/")


def admin_api_timeout() -> float:
    return float(os.environ.get("HELPDESK_ADMIN_API_TIMEOUT", "3"))


def tracker_store_url() -> str:
    """Where Rasa keeps conversations; SQLite under var/ by default, PostgreSQL by URL.

    Kept apart from the admin database (and from any SQL event broker, whose table is also
    named ``events``).
    """
    return os.environ.get("HELPDESK_TRACKER_STORE_URL") or f"sqlite:///{var_dir() / 'tracker.db'}"


def rasa_token_file() -> Path:
    return var_dir() / "secrets" / "rasa_token"


def nlu_params_file() -> Path:
    """Tuned classifier parameters (``helpdesk tune`` writes, ``data build`` merges)."""
    return Path(os.environ.get("HELPDESK_NLU_PARAMS", var_dir() / "nlu_params.yml")).resolve()


def tuning_storage_url() -> str:
    """Where Optuna keeps studies. Not the admin database: Optuna's own Alembic version
    table is also called ``alembic_version`` and would clash with ours."""
    return os.environ.get("HELPDESK_TUNING_STORAGE_URL") or f"sqlite:///{var_dir() / 'tuning.db'}"


def max_message_chars() -> int:
    """Longer customer messages are refused politely by the input channels."""
    return int(os.environ.get("HELPDESK_MAX_MESSAGE_CHARS", "1000"))


def max_request_bytes() -> int:
    """Larger REST channel bodies are refused with a 413 before Rasa sees them."""
    return int(os.environ.get("HELPDESK_MAX_REQUEST_BYTES", str(64 * 1024)))


def sender_messages_per_minute() -> float:
    """Customer messages one conversation may send a minute (a burst of a third at once);
    0 switches the limit off (load benchmarks replay traffic faster than any person)."""
    return float(os.environ.get("HELPDESK_SENDER_MESSAGES_PER_MINUTE", "30"))


def address_messages_per_minute() -> float:
    """Customer messages one network address may send a minute, over all its conversations
    (a burst of a fifth at once); 0 switches it off. Behind a proxy every customer shares
    the proxy's address: raise it, or switch it off there."""
    return float(os.environ.get("HELPDESK_ADDRESS_MESSAGES_PER_MINUTE", "300"))


def channel_metadata_keys() -> list[str]:
    """The message metadata keys a client may send (short strings); everything else is
    dropped before Rasa stores it. ``model_id`` is never accepted from a client."""
    keys = os.environ.get("HELPDESK_CHANNEL_METADATA_KEYS", "language,page")
    return [k.strip() for k in keys.split(",") if k.strip() and k.strip() != "model_id"]


def cors_origins() -> list[str]:
    """Origins whose pages may open the socket.io channel (the pages embedding the widget)."""
    return [o.strip() for o in os.environ.get("HELPDESK_CORS_ORIGINS", "").split(",") if o.strip()]


def model_pull_seconds() -> int:
    """How often Rasa asks the admin API's model server whether production changed."""
    return max(1, int(os.environ.get("HELPDESK_MODEL_PULL_SECONDS", "2")))
