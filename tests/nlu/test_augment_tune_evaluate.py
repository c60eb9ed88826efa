"""Augmentation, hyperparameter search and evaluation, through the API and the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from learning import data_build
from nlu import augment
from nlu.classifier import Prediction
from nlu.evaluation import intent_report, oos_metrics, threshold_for_accuracy
from nlu.tuning import SAMPLERS, read_params, run_study, write_params
from tests.conftest import BIN_DIR, PROJECT_ROOT, banking_examples, helpdesk_env

HELPDESK = str(BIN_DIR / "helpdesk")


def test_augmentation_keeps_originals_and_labels_and_is_seeded() -> None:
    texts = ["I still have not received my new card, why?", "How do I top up by bank transfer?"]
    labels = ["card_arrival", "top_up_by_bank_transfer_charge"]
    out_texts, out_labels = augment.augment_examples(texts, labels, {"copies": 3}, seed=7)
    assert out_texts[:2] == texts and out_labels[:2] == labels
    assert len(out_texts) > 2 and len(set(t.lower() for t in out_texts)) == len(out_texts)
    for text, label in zip(out_texts[2:], out_labels[2:], strict=True):
        source = texts[labels.index(label)]
        assert text != source
        shared = set(text.lower().split()) & set(source.lower().split())
        assert len(shared) >= 2, (text, source)  # an edit, not a different sentence
    assert augment.augment_examples(texts, labels, {"copies": 3}, seed=7) == (out_texts, out_labels)


def test_typos_stay_close_to_the_word() -> None:
    import random

    rng = random.Random(0)
    for _ in range(200):
        variant = augment.typo("transfer", rng)
        assert abs(len(variant) - len("transfer")) <= 1
        assert sum(a != b for a, b in zip(variant, "transfer", strict=False)) <= len("transfer")


def test_synonym_table_is_well_formed() -> None:
    groups = augment.synonym_groups()
    assert len(groups) >= 20
    phrases = [p for g in groups for p in g]
    assert len(phrases) == len(set(phrases)), "a phrase in two groups would chain meanings"


def test_intent_report_follows_rasa_layout() -> None:
    truth = ["a", "a", "b", "b", "c"]
    predicted = ["a", "b", "b", "b", "a"]
    report = intent_report(truth, predicted)
    assert report["accuracy"] == pytest.approx(0.6)
    assert {"precision", "recall", "f1-score", "support", "confused_with"} <= set(report["a"])
    assert report["a"]["confused_with"] == {"b": 1}
    assert report["c"]["recall"] == 0.0
    assert "macro avg" in report and "weighted avg" in report


def test_oos_metrics() -> None:
    def p(intent: str, confidence: float, oos: bool, in_scope: float | None = None
          ) -> Prediction:
        score = confidence if in_scope is None else in_scope
        return Prediction(intent, confidence, [(intent, confidence)], oos, score)

    predictions = [p("a", 0.9, False), p("b", 0.8, False), p("a", 0.3, True),
                   p("out_of_scope", 0.9, True)]
    truth = ["a", "b", "out_of_scope", "out_of_scope"]
    metrics = oos_metrics(predictions, truth, "out_of_scope")
    assert metrics["oos_recall"] == 1.0 and metrics["in_scope_accuracy"] == 1.0
    assert metrics["oos_auroc"] == 1.0
    # The AUROC ranks by the score the model's threshold reads, not by the confidence: a
    # confident out-of-scope message that a learned score places low is ranked low.
    learned = [p("a", 0.6, False, 0.9), p("b", 0.5, False, 0.8), p("a", 0.95, True, 0.1),
               p("out_of_scope", 0.9, True, 0.9)]
    assert oos_metrics(learned, truth, "out_of_scope")["oos_auroc"] == 1.0
    assert oos_metrics([p(x.intent, x.confidence, x.out_of_scope) for x in learned], truth,
                       "out_of_scope")["oos_auroc"] == 0.5


def test_threshold_for_accuracy_is_the_best_recall_at_that_accuracy() -> None:
    rng = np.random.default_rng(0)
    score = np.round(rng.random(400), 2)  # ties, as confidences have
    is_oos = rng.random(400) < 0.3
    right = ~is_oos & (rng.random(400) < 0.9 + 0.1 * score)
    for floor in (0.5, 0.8, 0.88, 0.99):
        # Every candidate threshold tried by brute force.
        reachable = [t for t in np.unique(score)
                     if (right & (score >= t))[~is_oos].mean() >= floor]
        best = max(((score < t)[is_oos].mean() for t in reachable), default=0.0)
        threshold = threshold_for_accuracy(score, right, is_oos, floor)
        assert (score < threshold)[is_oos].mean() == best
        assert threshold == (max(reachable) if reachable else score.min())


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_study_runs_and_resumes_with_each_sampler(tmp_path: Path, sampler: str) -> None:
    examples = banking_examples("train", 6, ["card_arrival", "exchange_rate", "age_limit"])
    texts, labels = [e.text for e in examples], [e.intent for e in examples]
    storage = f"sqlite:///{tmp_path / 'tuning.db'}"
    study = run_study(texts, labels, storage, "s", sampler, trials=2, progress=False,
                      base={"batch_size": 8, "validation_fraction": 0.34})
    assert len(study.trials) == 2
    again = run_study(texts, labels, storage, "s", sampler, trials=1, progress=False,
                      base={"batch_size": 8, "validation_fraction": 0.34})
    assert len(again.trials) == 3  # the same stored study, continued
    assert 0.0 <= again.best_value <= 1.0
    assert "learning_rate" in again.best_params


def test_study_refuses_data_without_a_validation_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 3 examples"):
        run_study(["a", "b"], ["x", "y"], f"sqlite:///{tmp_path / 't.db'}", "s", trials=1)


def test_params_file_flows_into_the_rendered_config(tmp_path: Path) -> None:
    path = write_params(tmp_path / "p.yml", {"learning_rate": 3e-5, "epochs": 2}, "test")
    params = read_params(path)
    assert params == {"learning_rate": 3e-5, "epochs": 2}
    data_build.build(tmp_path / "out", classifier_params=params)
    config = yaml.safe_load((tmp_path / "out" / "config.yml").read_text())
    [ours] = [c for c in config["pipeline"] if c["name"] == "nlu.BertIntentClassifier"]
    assert ours["learning_rate"] == 3e-5 and ours["epochs"] == 2
    bad = write_params(tmp_path / "bad.yml", {"learning_rat": 1}, "typo")
    with pytest.raises(ValueError, match="learning_rat"):
        read_params(bad)


def test_tune_command_writes_the_params_file(tmp_path: Path) -> None:
    env = helpdesk_env(tmp_path)
    result = subprocess.run(
        [HELPDESK, "tune", "--sampler", "random", "--trials", "1", "--limit-per-intent", "3"],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    params = read_params(tmp_path / "nlu_params.yml")
    assert "learning_rate" in params and "epochs" in params
    assert (tmp_path / "tuning.db").is_file()
    build = subprocess.run([HELPDESK, "data", "build", "--out", str(tmp_path / "b")], env=env,
                           cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert "Using tuned classifier parameters" in build.stdout
    wrong = subprocess.run([HELPDESK, "tune", "--sampler", "annealing"], env=env,
                           cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "grid, random, tpe" in wrong.stderr


def test_evaluate_command_writes_reports(tmp_path: Path, tiny_intent_model: Path) -> None:
    data = tmp_path / "held_out.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        for example in banking_examples("test", 10):
            writer.writerow([example.text, example.intent])
    out = tmp_path / "report"
    result = subprocess.run(
        [HELPDESK, "evaluate", "--model", str(tiny_intent_model), "--data", str(data),
         "--out", str(out)],
        env=helpdesk_env(tmp_path), cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] >= 0.85 and summary["examples"] == 60
    assert summary["latency_ms"]["p50"] > 0
    report = json.loads((out / "intent_report.json").read_text())
    assert report["card_arrival"]["support"] == 10
    confusion = json.loads((out / "confusion_matrix.json").read_text())
    assert np.array(confusion["matrix"]).sum() == 60
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "Weakest intents" in (out / "report.md").read_text()
    missing = subprocess.run([HELPDESK, "evaluate", "--model", str(tmp_path / "none")],
                             env=helpdesk_env(tmp_path), cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no model to evaluate" in missing.stderr
