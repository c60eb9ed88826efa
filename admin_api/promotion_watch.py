"""After a promotion: is the new model doing worse with real customers than the one before?

For the first ``promotion_watch_hours`` after the production model was promoted, its fallback
rate (per customer message), hand-off rate (per conversation) and thumbs-down rate (per
customer message) are set beside the same hours of the week before, which the previous model
served; a rise beyond ``promotion_watch_margin`` (with enough messages on both sides to mean
something) is an alert, and with automatic rollback on the watch rolls production back, once,
audited. ``promotion_auto_rollback`` is the default; an admin turns it on or off in the console
(stored in the database, audited), so no restart is needed. A background thread of the admin
API checks; the console shows its latest finding, and an automatic rollback until the next
promotion, both stored in the database, so no page scans the tracker store for them.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from admin_api import metrics, turn_facts
from admin_api.models import Meta, ModelVersion, utcnow
from admin_api.tracker import TrackerStore
from common import audit
from common.config import get_settings
from common.db import get_engine
from learning import registry

logger = logging.getLogger(__name__)
WATCHED = ("fallback_rate", "handoff_rate", "thumbs_down_rate")
WEEK = timedelta(days=7)
FINDING_KEY = "promotion_watch"
ROLLBACK_KEY = "promotion_watch_rollback"
AUTO_ROLLBACK_KEY = "promotion_auto_rollback"
ACTOR = "promotion watch"


@dataclass
class Finding:
    model_key: int
    hours: float
    current: dict[str, float]
    previous: dict[str, float]
    rises: list[str] = field(default_factory=list)
    enough: bool = False
    rolled_back: bool = False


def assess(session: Session, store: TrackerStore, now: datetime | None = None) -> Finding | None:
    """The production model's rates since its promotion beside the week before's; None when
    nothing was promoted, or the watch window is over."""
    settings = get_settings()
    entry = registry.production(session)
    if entry is None or entry.promoted_at is None or entry.id is None:
        return None
    now = now or utcnow()
    start = entry.promoted_at
    end = min(now, start + timedelta(hours=settings.promotion_watch_hours))
    if end <= start or now - start > timedelta(hours=settings.promotion_watch_hours) * 2:
        return None
    if turn_facts.ensure_fresh(session, store) is not None:
        return None  # the figures are still being prepared: no judging half of them
    current = metrics.rates(session, start, end, model_id=entry.model_id)
    previous = metrics.rates(session, start - WEEK, end - WEEK)
    enough = min(current["messages"], previous["messages"]) >= settings.promotion_watch_min_messages
    rises = [k for k in WATCHED if enough
             and current[k] - previous[k] > settings.promotion_watch_margin]
    return Finding(entry.id, round((end - start).total_seconds() / 3600, 2), current, previous,
                   rises, enough)


MEASURES = (*WATCHED, "messages")


def _encode(finding: Finding) -> str:
    """A compact form that fits the small key/value table."""
    return json.dumps({"k": finding.model_key, "h": finding.hours,
                       "c": [finding.current[m] for m in MEASURES],
                       "p": [finding.previous[m] for m in MEASURES],
                       "r": [WATCHED.index(r) for r in finding.rises],
                       "e": finding.enough, "b": finding.rolled_back}, separators=(",", ":"))


def latest(session: Session) -> Finding | None:
    """The last check's finding (what the console shows)."""
    return _decode(session.get(Meta, FINDING_KEY))


def last_rollback(session: Session) -> Finding | None:
    """The last automatic rollback, while the model it restored still serves from that
    rollback on (the next check judges that model and replaces ``latest``; this stays until
    production changes again)."""
    row = session.get(Meta, ROLLBACK_KEY)
    if row is None:
        return None
    record = json.loads(row.value)
    current = registry.production(session)
    if current is None or current.id != record["t"] or current.promoted_at is None or \
            current.promoted_at.isoformat(timespec="seconds") != record["a"]:
        return None
    return _decode(row)


def auto_rollback(session: Session) -> bool:
    """Whether a rise rolls back: the admin's choice, else the configured default."""
    row = session.get(Meta, AUTO_ROLLBACK_KEY)
    return row.value == "true" if row is not None else get_settings().promotion_auto_rollback


def set_auto_rollback(session: Session, actor: str, on: bool) -> None:
    """The caller commits."""
    session.merge(Meta(key=AUTO_ROLLBACK_KEY, value="true" if on else "false"))
    audit.record(session, actor, "watch.auto_rollback", "settings", AUTO_ROLLBACK_KEY,
                 enabled=on)


def _decode(row: Meta | None) -> Finding | None:
    if row is None:
        return None
    data = json.loads(row.value)
    return Finding(data["k"], data["h"], dict(zip(MEASURES, data["c"], strict=True)),
                   dict(zip(MEASURES, data["p"], strict=True)),
                   [WATCHED[i] for i in data["r"]], data["e"], data["b"])


def check(store: TrackerStore, now: datetime | None = None) -> Finding | None:
    """Assess, remember the finding, and roll back when the rise calls for it (once)."""
    with Session(get_engine()) as session:
        finding = assess(session, store, now)
        if finding is None:
            return None
        if finding.rises and auto_rollback(session):
            entry = session.get(ModelVersion, finding.model_key)
            back = registry.rollback(session, ACTOR)
            audit.record(session, ACTOR, "model.auto_rollback", "model", finding.model_key,
                         rises={k: [finding.previous[k], finding.current[k]]
                                for k in finding.rises},
                         rolled_back_to=back.model_id,
                         model_id=entry.model_id if entry else None)
            finding.rolled_back = True
            assert back.promoted_at is not None
            # The finding, and which model it restored when (``t``, ``a``): one small row.
            record = {**json.loads(_encode(finding)), "t": back.id,
                      "a": back.promoted_at.isoformat(timespec="seconds")}
            session.merge(Meta(key=ROLLBACK_KEY, value=json.dumps(record, separators=(",", ":"))))
            logger.warning("promotion watch: %s rose after model %s; rolled back to %s",
                           ", ".join(finding.rises), finding.model_key, back.model_id)
        session.merge(Meta(key=FINDING_KEY, value=_encode(finding)))
        session.commit()
        return finding


def start_watch(stop: threading.Event) -> threading.Thread | None:
    """Check every ``promotion_watch_seconds`` until ``stop`` is set (none: 0)."""
    interval = get_settings().promotion_watch_seconds
    if interval <= 0:
        return None

    def loop() -> None:
        while not stop.wait(interval):
            try:
                check(TrackerStore(get_settings().tracker_store_url))
            except (SQLAlchemyError, registry.RegistryError, ValueError) as error:
                logger.warning("promotion watch failed, will retry: %s", error)

    thread = threading.Thread(target=loop, name="promotion-watch", daemon=True)
    thread.start()
    return thread
