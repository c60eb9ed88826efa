"""Settings of the admin API, from ``HELPDESK_*`` environment variables with laptop defaults."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseSettings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_var_dir() -> Path:
    return Path(os.environ.get("HELPDESK_VAR_DIR", PROJECT_ROOT / "var")).resolve()


class Settings(BaseSettings):
    var_dir: Path = default_var_dir()
    data_dir: Path = PROJECT_ROOT / "data"
    # SQLite under var/ by default; postgresql://user@host:5432/db in production.
    database_url: str = ""
    # Comma-separated origins allowed to call the public endpoints (the widget's pages).
    cors_origins: str = "http://127.0.0.1:8000,http://localhost:8000"
    # Where browsers reach the Rasa server (the widget talks to it directly).
    public_rasa_url: str = "http://127.0.0.1:5005"
    max_request_bytes: int = 64 * 1024
    # The built chat widget (``make setup`` bundles bot/widget/src into it).
    widget_dir: Path = PROJECT_ROOT / "bot" / "widget" / "dist"
    # Answer imports are files, so they get a larger limit than other bodies.
    max_import_bytes: int = 5 * 1024 * 1024
    # Rasa's tracker store (conversations are read there, never copied) and HTTP API.
    tracker_store_url: str = ""
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str = ""
    # Customer turns under this intent confidence go to the review inbox.
    review_confidence_below: float = 0.5
    # A thumbs-up confirms the intent the bot understood; that message then becomes a training
    # example: ``review`` (pending until staff approve it), ``auto`` (approved at once; the
    # release gate still judges every model) or ``off``.
    confirmed_examples: Literal["off", "review", "auto"] = "review"
    # Public endpoints (feedback intake): requests per minute per client address.
    public_rate_per_minute: int = 30
    # How often the API purges conversations older than the retention setting.
    purge_interval_seconds: float = 3600.0

    class Config:
        env_prefix = "HELPDESK_"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'admin.db'}"

    @property
    def resolved_tracker_store_url(self) -> str:
        return self.tracker_store_url or f"sqlite:///{self.var_dir / 'tracker.db'}"

    @property
    def resolved_rasa_token(self) -> str:
        """The token ``helpdesk serve`` gave Rasa: from the environment or its secrets file."""
        if self.rasa_token:
            return self.rasa_token
        path = self.var_dir / "secrets" / "rasa_token"
        return path.read_text(encoding="utf-8").strip() if path.is_file() else ""

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
