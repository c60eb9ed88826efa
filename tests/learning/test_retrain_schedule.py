"""The retraining schedule: a cron expression, and only when enough new examples were approved."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, select

from admin_api import migrate
from admin_api.models import ExampleSource, ExampleStatus, Job, TrainingExample
from common.config import get_settings
from common.db import get_engine
from learning.worker import Schedule, maybe_schedule, new_approved_examples


def test_the_cron_expression_fires_once_per_slot_counted_from_start() -> None:
    schedule = Schedule("0 3 * * *", datetime(2026, 1, 1, 4, 0))
    assert not schedule.due(datetime(2026, 1, 1, 23, 59))  # the 03:00 before start is missed
    assert schedule.due(datetime(2026, 1, 2, 3, 0, 1))
    assert not schedule.due(datetime(2026, 1, 2, 3, 5))  # once per slot
    assert schedule.due(datetime(2026, 1, 3, 3, 0, 0))
    with pytest.raises(ValueError):
        Schedule("every night", datetime(2026, 1, 1))


def test_a_due_schedule_queues_only_with_enough_new_examples(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    migrate.upgrade(database_url)
    monkeypatch.setenv("HELPDESK_RETRAIN_MIN_NEW_EXAMPLES", "3")
    settings = get_settings()
    start = datetime(2026, 1, 1, 4, 0)
    schedule = Schedule("0 3 * * *", start)
    with Session(get_engine(database_url)) as session:
        def approve(n: int, when: datetime) -> None:
            for i in range(n):
                session.add(TrainingExample(text=f"example {when} {i}", intent="card_arrival",
                                            source=ExampleSource.staff.value,
                                            status=ExampleStatus.approved.value,
                                            approved_at=when))
            session.commit()

        approve(2, start)
        message = maybe_schedule(session, schedule, settings, start + timedelta(days=1))
        assert message == ("scheduled retraining skipped: 2 new approved examples, 3 needed")
        assert session.exec(select(Job)).all() == []
        approve(1, start + timedelta(hours=2))
        assert maybe_schedule(session, schedule, settings, start + timedelta(hours=30)) is None
        message = maybe_schedule(session, schedule, settings, start + timedelta(days=2))
        assert message is not None and "queued as job" in message
        [job] = session.exec(select(Job)).all()
        assert job.requested_by == "schedule" and job.status == "queued"
        assert new_approved_examples(session) == 0  # counted from the last job on
        approve(5, job.created_at + timedelta(seconds=1))
        message = maybe_schedule(session, schedule, settings, start + timedelta(days=3))
        assert "already queued" in message  # never two waiting jobs


def test_bad_retraining_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_JOB_STALE_SECONDS", "5")
    with pytest.raises(ValueError, match="3 heartbeats"):
        get_settings()
    monkeypatch.setenv("HELPDESK_JOB_STALE_SECONDS", "60")
    monkeypatch.setenv("HELPDESK_HELDOUT_SHARE", "lots")
    with pytest.raises(ValueError, match="not a number"):
        get_settings()
