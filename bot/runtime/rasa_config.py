"""Renders what ``rasa run`` reads at start: endpoints, credentials and the HTTP API token.

They are rendered from settings into ``var/run/`` rather than kept as static YAML, so switching
the tracker store to PostgreSQL or changing a port is one environment variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml
from sqlalchemy.engine import make_url

from common.config import get_settings

TRACKER_STORE = "bot.runtime.tracker_store.CompactSQLTrackerStore"


def tracker_store_config(url: str) -> dict[str, object]:
    """Rasa's SQL tracker store section for a SQLAlchemy URL: Rasa's SQL store, minus the
    sentence vectors handed from the classifier to the retriever (``tracker_store.py``)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database:
            raise ValueError("the SQLite tracker store URL needs a file path")
        path = Path(parsed.database).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return {"type": TRACKER_STORE, "dialect": "sqlite", "db": str(path)}
    if backend == "postgresql":
        config: dict[str, object] = {
            "type": TRACKER_STORE,
            "dialect": "postgresql",
            "url": parsed.host or "localhost",
            "port": parsed.port or 5432,
            "db": parsed.database,
        }
        if parsed.username:
            config["username"] = parsed.username
        if parsed.password:
            config["password"] = parsed.password
        return config
    raise ValueError(f"unsupported tracker store database {backend!r}: use sqlite or postgresql")


def event_broker_config(url: str) -> dict[str, object]:
    """Rasa's RabbitMQ event broker section for an ``amqp://user:pass@host:port/`` URL: Rasa
    declares the durable queue and publishes every event it saves to it."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("amqp", "amqps") or not parsed.hostname:
        raise ValueError(f"HELPDESK_EVENT_BROKER_URL must be amqp://user:pass@host:port/, "
                         f"not {url!r}")
    return {"type": "pika", "url": parsed.hostname, "port": parsed.port or 5672,
            "username": unquote(parsed.username or "guest"),
            "password": unquote(parsed.password or "guest"),
            "queues": [get_settings().event_queue]}


def lock_store_config(url: str, timeout: float) -> dict[str, object]:
    """The Redis lock store section for a ``redis://[:password@]host:port/db`` URL: every
    Rasa instance takes the same conversation's lock, so two messages of one conversation
    are processed one after the other whichever instances receive them. Rasa's own Redis
    lock store with its ticket queue updated atomically (``bot/runtime/lock_store.py``)."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise ValueError(f"HELPDESK_REDIS_URL must be redis://host:port/db, not {url!r}")
    database = parsed.path.strip("/") or "0"
    if not database.isdigit():
        raise ValueError(f"HELPDESK_REDIS_URL's database must be a number, not {database!r}")
    config: dict[str, object] = {
        "type": "bot.runtime.lock_store.SerialRedisLockStore", "url": parsed.hostname,
        "port": parsed.port or 6379,
        "db": int(database), "key_prefix": "helpdesk", "socket_timeout": timeout,
        "use_ssl": parsed.scheme == "rediss"}
    if parsed.password:
        config["password"] = unquote(parsed.password)
    return config


def rasa_token() -> str:
    """The token protecting Rasa's HTTP API: from the environment, or made once and kept."""
    configured = get_settings().rasa_token
    if configured:
        return configured
    path = get_settings().rasa_token_file
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token)
    return token


def write_run_config(run_dir: Path, actions_url: str, model_server_url: str,
                     token: str) -> tuple[Path, Path]:
    """Write endpoints.yml and credentials.yml for one ``rasa run``; returns their paths.

    ``models:`` makes Rasa pull its model from the admin API's model server (ETag protocol,
    every ``HELPDESK_MODEL_PULL_SECONDS``), authenticated with the Rasa token it already has.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    endpoints = {
        # The domain goes only to the actions that ask for it (forms' ``validate_`` actions),
        # not with every call: our answer action never reads it.
        "action_endpoint": {"url": f"{actions_url}/webhook", "enable_selective_domain": True},
        "tracker_store": tracker_store_config(get_settings().tracker_store_url),
        # A header, not ``?token=``: query strings end up in access logs.
        "models": {"url": model_server_url, "headers": {"X-Rasa-Token": token},
                   "wait_time_between_pulls": get_settings().model_pull_seconds},
    }
    if get_settings().redis_url:
        endpoints["lock_store"] = lock_store_config(get_settings().redis_url,
                                                    get_settings().redis_timeout)
    if get_settings().event_broker_url:
        endpoints["event_broker"] = event_broker_config(get_settings().event_broker_url)
    # Rasa's own channels behind our guard (masking, length limit): same names and protocol.
    credentials = {
        "bot.runtime.channels.GuardedRestInput": None,
        "bot.runtime.channels.GuardedSocketIOInput": {
            "user_message_evt": "user_uttered",
            "bot_message_evt": "bot_uttered",
            "session_persistence": True,
        },
    }
    endpoints_path = run_dir / "endpoints.yml"
    credentials_path = run_dir / "credentials.yml"
    # The token is in endpoints.yml now: keep the file private like the token's own file.
    for path in (endpoints_path, credentials_path):
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
    endpoints_path.write_text(yaml.safe_dump(endpoints, sort_keys=False), encoding="utf-8")
    credentials_path.write_text(yaml.safe_dump(credentials, sort_keys=False), encoding="utf-8")
    return endpoints_path, credentials_path
