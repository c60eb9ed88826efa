"""Rasa's own conversation tests over the trained bot: every flow's story must be predicted
exactly (``rasa test core --fail-on-prediction-errors``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, helpdesk_env

pytestmark = pytest.mark.slow
STORIES = PROJECT_ROOT / "bot" / "tests" / "test_stories.yml"


def test_every_flow_story_is_predicted(tiny_model: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rasa", "test", "core", "--model", str(tiny_model),
         "--stories", str(STORIES), "--fail-on-prediction-errors", "--out", str(tmp_path)],
        env=helpdesk_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    failed = (tmp_path / "failed_test_stories.yml")
    report = failed.read_text() if failed.is_file() else ""
    assert result.returncode == 0, (result.stdout[-3000:] + result.stderr[-3000:] + report)
    assert "None of the test stories failed" in report or not report.strip("# \n"), report
