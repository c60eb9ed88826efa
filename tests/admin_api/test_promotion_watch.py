"""After a promotion, over a real tracker store (SQLite and PostgreSQL): the new model's rates
beside the same hours of the week before, the alert on a rise, the automatic rollback when it
is enabled (audited), and no judgement on too few messages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api import promotion_watch
from admin_api.models import AuditEntry, ModelVersion, utcnow
from admin_api.tracker import TrackerStore
from common.config import get_settings
from common.db import get_engine
from learning import registry
from tests.admin_api.test_console import signed_in
from tests.admin_api.test_registry import archive
from tests.tracker_seed import DAY, Say, seed

HOUR = 3600.0


def _turn(model_id: str, message_id: str, fallback: bool) -> Say:
    if fallback:
        return Say("blorp zing", "nlu_fallback", 0.2, model_id, message_id,
                   actions=["utter_no_answer"],
                   bot=[{"text": "Sorry.", "metadata": {"utter_action": "utter_no_answer"}}])
    return Say("When will my card arrive?", "card_arrival", 0.9, model_id, message_id,
               actions=["action_answer"],
               bot=[{"text": "Soon.", "data": {"custom": {"answer_id": 101,
                                                          "decision": "answer"}}}])


@pytest.fixture
def promoted(client: TestClient, tracker_url: str, tmp_path: Path) -> dict[str, int]:
    """``old`` served last week; ``new`` was promoted two hours ago. Last week, 60 turns with
    no fallback; since the promotion, 60 turns of which 18 fell back."""
    with Session(get_engine()) as session:
        old = registry.register(session, archive(tmp_path, "old"))
        registry.promote(session, old, "ada")
        old.promoted_at = utcnow() - timedelta(days=10)
        new = registry.register(session, archive(tmp_path, "new"))
        registry.promote(session, new, "ada")
        new.promoted_at = utcnow() - timedelta(hours=2)
        session.add_all([old, new])
        session.commit()
        keys = {"old": old.id, "new": new.id}
    conversations, ages = {}, {}
    for i in range(60):
        conversations[f"before-{i}"] = [_turn("old", f"b-{i}", False)]
        ages[f"before-{i}"] = 7 * DAY + HOUR - i
        conversations[f"after-{i}"] = [_turn("new", f"a-{i}", i % 10 < 3)]
        ages[f"after-{i}"] = HOUR - i
    seed(tracker_url, conversations, ages)
    return keys


def test_a_rise_in_fallbacks_after_a_promotion_raises_the_alert(
        client: TestClient, auth: dict, tracker_url: str, promoted: dict[str, int]) -> None:
    finding = promotion_watch.check(TrackerStore(tracker_url))
    assert finding is not None and finding.model_key == promoted["new"]
    assert finding.current["messages"] == 60 and finding.previous["messages"] == 60
    assert finding.current["fallback_rate"] == 0.3 and finding.previous["fallback_rate"] == 0.0
    assert finding.rises == ["fallback_rate"] and not finding.rolled_back
    with Session(get_engine()) as session:
        assert registry.production(session).id == promoted["new"]  # alert only: no rollback
        assert promotion_watch.latest(session) == finding
    staff, _ = signed_in(client, auth["staff"])
    page = staff.get("/console/models").text
    assert "After the promotion of new" in page and "Alert: fallback_rate rose" in page
    assert "30.0 %" in page and "0.0 %" in page
    dashboard = staff.get("/console/dashboard").text
    assert "After the promotion of new: fallback_rate rose beyond the margin" in dashboard


def test_with_automatic_rollback_the_watch_rolls_production_back_once(
        client: TestClient, tracker_url: str, promoted: dict[str, int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_PROMOTION_AUTO_ROLLBACK", "true")
    get_settings.cache_clear()
    finding = promotion_watch.check(TrackerStore(tracker_url))
    assert finding is not None and finding.rolled_back
    with Session(get_engine()) as session:
        assert registry.production(session).id == promoted["old"]
        assert session.get(ModelVersion, promoted["new"]).status == "rejected"
        [entry] = session.exec(select(AuditEntry).where(
            AuditEntry.action == "model.auto_rollback")).all()
        assert entry.actor == "promotion watch" and entry.details["rolled_back_to"] == "old"
        assert entry.details["rises"] == {"fallback_rate": [0.0, 0.3]}
    # The restored model is watched from its return on: nothing to judge yet, no second rollback.
    again = promotion_watch.check(TrackerStore(tracker_url))
    assert again is not None and again.model_key == promoted["old"]
    assert not again.enough and not again.rolled_back
    with Session(get_engine()) as session:
        assert registry.production(session).id == promoted["old"]
        # The rollback stays in view after that next check, until production changes again.
        kept = promotion_watch.last_rollback(session)
        assert kept is not None and kept.model_key == promoted["new"] and kept.rolled_back
        registry.promote(session, session.get(ModelVersion, promoted["new"]), "ada")
        session.commit()
        assert promotion_watch.last_rollback(session) is None


def test_an_admin_turns_the_automatic_rollback_on_and_the_next_check_uses_it(
        client: TestClient, auth: dict, tracker_url: str, promoted: dict[str, int]) -> None:
    assert client.get("/api/v1/models/watch", headers=auth["staff"]).json()[
        "auto_rollback"] is False
    assert client.put("/api/v1/models/watch", json={"auto_rollback": True},
                      headers=auth["staff"]).status_code == 403
    bad = client.put("/api/v1/models/watch", json={"auto_rollback": "sometimes"},
                     headers=auth["admin"])
    assert bad.status_code == 422 and "auto_rollback" in bad.text
    reply = client.put("/api/v1/models/watch", json={"auto_rollback": True},
                       headers=auth["admin"])
    assert reply.status_code == 200 and reply.json()["auto_rollback"] is True
    assert reply.json()["margin"] == get_settings().promotion_watch_margin
    finding = promotion_watch.check(TrackerStore(tracker_url))
    assert finding is not None and finding.rolled_back
    with Session(get_engine()) as session:
        assert registry.production(session).id == promoted["old"]
        [entry] = session.exec(select(AuditEntry).where(
            AuditEntry.action == "watch.auto_rollback")).all()
        assert entry.actor == "ada" and entry.details == {"enabled": True}
    staff, _ = signed_in(client, auth["staff"])
    page = staff.get("/console/models").text
    assert 'id="auto-rollback"' in page and "rolled back automatically from new" in page
    assert "Automatic rollback is on." in page
    dashboard = staff.get("/console/dashboard").text
    assert "production was rolled back automatically" in dashboard


def test_too_few_messages_are_not_judged(client: TestClient, tracker_url: str,
                                         promoted: dict[str, int],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_PROMOTION_WATCH_MIN_MESSAGES", "100")
    monkeypatch.setenv("HELPDESK_PROMOTION_AUTO_ROLLBACK", "true")
    get_settings.cache_clear()
    finding = promotion_watch.check(TrackerStore(tracker_url))
    assert finding is not None and not finding.enough and finding.rises == []
    with Session(get_engine()) as session:
        assert registry.production(session).id == promoted["new"]
