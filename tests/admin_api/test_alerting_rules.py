"""The Prometheus alerting rules (``prometheus/alerts.yml``): valid for promtool, each alert
proven by its unit tests, and written against gauges the admin API really exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.tracker_seed import banking_conversations, seed

RULES = Path(__file__).resolve().parents[2] / "prometheus"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (scripts/install_test_packages.sh installs "
                    "Debian's prometheus package, which has it)")
    return found


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    promtool = _promtool()
    checked = subprocess.run([promtool, "check", "rules", "alerts.yml"], cwd=RULES,
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = subprocess.run([promtool, "test", "rules", "alerts.test.yml"], cwd=RULES,
                            capture_output=True, text=True, timeout=120)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_gauge_the_rules_use_is_exported_by_the_admin_api(
        client: TestClient, tracker_url: str) -> None:
    conversations, ages = banking_conversations()
    seed(tracker_url, conversations, ages)
    exported = client.get("/metrics").text
    used = set(re.findall(r"\bhelpdesk_[a-z0-9_]+", (RULES / "alerts.yml").read_text()))
    assert {"helpdesk_fallback_rate_24h", "helpdesk_handoff_rate_24h",
            "helpdesk_reply_latency_seconds_1h"} <= used
    for name in used:
        assert re.search(rf"^{name}(\{{| )", exported, re.MULTILINE), name
    # Every seeded reply came 0.2 s after its message.
    assert 'helpdesk_reply_latency_seconds_1h{quantile="0.95"} 0.2' in exported
    assert "helpdesk_handoff_rate_24h 0.25" in exported
