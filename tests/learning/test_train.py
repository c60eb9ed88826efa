"""Training writes a model only when it is whole, and a failure says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from learning import data_build
from learning import train as bot_train


def test_failed_training_leaves_no_model_and_shows_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELPDESK_VAR_DIR", str(tmp_path / "var"))
    build = tmp_path / "build"
    data_build.build(build, limit_per_intent=2)
    config = build / "config.yml"
    config.write_text(config.read_text().replace("nlu.BertIntentClassifier",
                                                 "NoSuchClassifierAnywhere"))
    models = tmp_path / "models"
    with pytest.raises(bot_train.TrainingFailed) as error:
        bot_train.train(build, models)
    assert "NoSuchClassifierAnywhere" in str(error.value)
    assert "train.log" in str(error.value)
    assert list(models.iterdir()) == []  # no archive, no staging folder left behind
    assert bot_train.latest_model(models) is None


def test_latest_model_ignores_unfinished_runs(tmp_path: Path) -> None:
    (tmp_path / ".training-abc").mkdir()
    (tmp_path / ".training-abc" / "partial.tar.gz").write_bytes(b"half")
    assert bot_train.latest_model(tmp_path) is None
    older, newer = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    older.write_bytes(b"1")
    newer.write_bytes(b"2")
    import os

    os.utime(older, (1_000_000, 1_000_000))
    assert bot_train.latest_model(tmp_path) == newer
