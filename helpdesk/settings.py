"""Where ``helpdesk serve`` puts its processes: host and ports, from ``HELPDESK_*`` variables."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{name}={port} is outside 1-65535")
    return port


@dataclass(frozen=True)
class ServeSettings:
    host: str
    rasa_port: int
    actions_port: int
    api_port: int
    startup_timeout: float
    # Proxies whose X-Forwarded-For the admin API believes (comma-separated addresses);
    # none by default, so a client cannot choose the address its rate limit counts.
    trusted_proxies: str = ""

    @classmethod
    def from_env(cls) -> ServeSettings:
        return cls(
            host=os.environ.get("HELPDESK_HOST", "127.0.0.1"),
            rasa_port=_port("HELPDESK_RASA_PORT", 5005),
            actions_port=_port("HELPDESK_ACTIONS_PORT", 5055),
            api_port=_port("HELPDESK_API_PORT", 8000),
            startup_timeout=float(os.environ.get("HELPDESK_STARTUP_TIMEOUT", "180")),
            trusted_proxies=os.environ.get("HELPDESK_TRUSTED_PROXIES", "").strip(),
        )

    def url(self, port: int) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{port}"


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class RetrainSettings:
    """The retraining loop: schedule, worker, evaluation sets and the release gate."""

    cron: str  # e.g. "0 3 * * *" (nightly at 03:00 UTC); empty: no schedule
    min_new_examples: int  # a scheduled run needs this many newly approved examples
    heartbeat_seconds: float
    stale_seconds: float  # a running job without a heartbeat this long has lost its worker
    poll_seconds: float
    nice: int  # the worker's CPU priority increment (it trains beside the live bot)
    heldout_csv: str  # text,category CSV never trained on; empty: BANKING77's test.csv
    heldout_share: float  # share of staff-labelled examples kept out of training, for judging
    reliability_folds: int
    reliability_max_examples: int
    accuracy_tolerance: float
    recall_drop_margin: float
    recall_drop_alpha: float
    min_intent_support: int
    regression_min_accuracy: float
    latency_p95_budget_ms: float
    registry_keep: int  # archives kept besides production's: replaced ones, and the rest

    @classmethod
    def from_env(cls) -> RetrainSettings:
        settings = cls(
            cron=os.environ.get("HELPDESK_RETRAIN_CRON", "").strip(),
            min_new_examples=int(_float("HELPDESK_RETRAIN_MIN_NEW_EXAMPLES", 50)),
            heartbeat_seconds=_float("HELPDESK_JOB_HEARTBEAT_SECONDS", 5),
            stale_seconds=_float("HELPDESK_JOB_STALE_SECONDS", 60),
            poll_seconds=_float("HELPDESK_WORKER_POLL_SECONDS", 2),
            nice=int(_float("HELPDESK_WORKER_NICE", 10)),
            heldout_csv=os.environ.get("HELPDESK_HELDOUT_CSV", ""),
            heldout_share=_float("HELPDESK_HELDOUT_SHARE", 0.2),
            reliability_folds=int(_float("HELPDESK_RELIABILITY_FOLDS", 3)),
            reliability_max_examples=int(_float("HELPDESK_RELIABILITY_MAX_EXAMPLES", 1000)),
            accuracy_tolerance=_float("HELPDESK_GATE_ACCURACY_TOLERANCE", 0.01),
            recall_drop_margin=_float("HELPDESK_GATE_RECALL_DROP", 0.15),
            recall_drop_alpha=_float("HELPDESK_GATE_RECALL_ALPHA", 0.01),
            min_intent_support=int(_float("HELPDESK_GATE_MIN_SUPPORT", 5)),
            regression_min_accuracy=_float("HELPDESK_GATE_REGRESSION_MIN_ACCURACY", 0.8),
            latency_p95_budget_ms=_float("HELPDESK_GATE_LATENCY_P95_MS", 50),
            registry_keep=int(_float("HELPDESK_REGISTRY_KEEP", 10)),
        )
        if settings.heartbeat_seconds * 3 > settings.stale_seconds:
            raise ValueError("HELPDESK_JOB_STALE_SECONDS must be at least 3 heartbeats long")
        if not 0 <= settings.heldout_share < 1:
            raise ValueError("HELPDESK_HELDOUT_SHARE must be in [0, 1)")
        if settings.registry_keep < 1:
            raise ValueError("HELPDESK_REGISTRY_KEEP must be at least 1")
        return settings

    def policy(self):  # noqa: ANN201 - nlu.release.GatePolicy, imported lazily
        from nlu.release import GatePolicy

        return GatePolicy(accuracy_tolerance=self.accuracy_tolerance,
                          recall_drop_margin=self.recall_drop_margin,
                          recall_drop_alpha=self.recall_drop_alpha,
                          min_intent_support=self.min_intent_support,
                          regression_min_accuracy=self.regression_min_accuracy,
                          latency_p95_budget_ms=self.latency_p95_budget_ms)
