"""The release gate and maturity report on tiny, real models (trained here in seconds).

A better candidate is promoted; one trained on shuffled labels and one missing a single
intent's examples are rejected, each with the reason an operator would need.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.conftest import TINY_INTENTS, banking_examples

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _train(tmp: Path, name: str, pairs: list[tuple[str, str]]):  # evaluation
    from nlu.classifier import IntentClassifier
    from nlu.training import TrainParams, train

    result = train([t for t, _ in pairs], [i for _, i in pairs], TrainParams(epochs=0),
                   tmp / name, progress=False)
    return IntentClassifier.load(result.path)


def _judged(classifier, heldout, regression) -> dict:
    from nlu.evaluation import evaluate

    return {"heldout": evaluate(classifier, [t for t, _ in heldout], [i for _, i in heldout]),
            "regression": evaluate(classifier, [t for t, _ in regression],
                                   [i for _, i in regression], oos_label=None,
                                   measure_latency=False)}


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("gate")
    train = [(e.text, e.intent) for e in banking_examples("train", 20)]
    few = [(e.text, e.intent) for e in banking_examples("train", 2)]
    heldout = [(e.text, e.intent) for e in banking_examples("test", 20)]
    regression = train[::4]  # "corrected mistakes" the candidates trained on
    labels = [i for _, i in train]
    random.Random(1).shuffle(labels)
    shuffled = [(t, label) for (t, _), label in zip(train, labels, strict=True)]
    missing = [(t, i) for t, i in train if i != "exchange_rate"]
    models = {"production": few, "better": train, "shuffled": shuffled, "missing": missing}
    return {name: _judged(_train(tmp, name, pairs), heldout, regression)
            for name, pairs in models.items()}


def test_a_better_candidate_passes_every_check(judged: dict[str, dict]) -> None:
    from learning.release import GatePolicy, judge

    decision = judge(judged["better"], judged["production"], GatePolicy())
    assert decision.passed, decision.reasons
    assert {c["check"] for c in decision.checks} == {"accuracy", "per-intent recall",
                                                      "regression set", "latency"}
    assert (judged["better"]["heldout"]["summary"]["accuracy"]
            > judged["production"]["heldout"]["summary"]["accuracy"])


def test_shuffled_labels_are_rejected_for_accuracy_and_regressions(
        judged: dict[str, dict]) -> None:
    from learning.release import GatePolicy, judge

    decision = judge(judged["shuffled"], judged["production"], GatePolicy())
    assert not decision.passed
    failed = {c["check"] for c in decision.checks if not c["passed"]}
    assert {"accuracy", "regression set"} <= failed
    assert any("held-out accuracy" in reason for reason in decision.reasons)


def test_a_candidate_missing_one_intent_is_rejected_naming_it(judged: dict[str, dict]) -> None:
    from learning.release import GatePolicy, judge

    # Against the better model as production: overall accuracy barely moves with 1 of 6
    # intents gone at this tolerance, but that intent's recall falls to zero.
    decision = judge(judged["missing"], judged["better"], GatePolicy(accuracy_tolerance=0.5))
    assert not decision.passed
    [reason] = decision.reasons
    assert "exchange_rate -1.00" in reason or "exchange_rate -0.9" in reason, reason


def test_without_production_only_absolute_rules_apply(judged: dict[str, dict]) -> None:
    from learning.release import GatePolicy, judge

    assert judge(judged["better"], None, GatePolicy()).passed
    slow = judge(judged["better"], None, GatePolicy(latency_p95_budget_ms=0.001))
    assert not slow.passed and "p95 latency" in slow.reasons[0]


def test_the_maturity_report_has_three_parts_and_the_gate(
        judged: dict[str, dict]) -> None:
    from learning.release import GatePolicy, cross_validate, judge, maturity, maturity_markdown
    from nlu.training import TrainParams

    train = banking_examples("train", 12)
    reliability = cross_validate([e.text for e in train], [e.intent for e in train],
                                 TrainParams(epochs=0), folds=3, max_examples=60)
    assert reliability["folds"] == 3 and reliability["examples"] == 60
    assert len(reliability["fold_accuracy"]) == 3
    assert reliability["accuracy"]["mean"] > 1.5 / len(TINY_INTENTS)  # far above chance
    assert reliability["accuracy"]["min"] <= reliability["accuracy"]["max"]

    decision = judge(judged["missing"], judged["better"], GatePolicy())
    report = maturity(judged["missing"], judged["better"], reliability, 1234, decision)
    assert set(report) == {"reliability", "performance", "scalability", "gate"}
    assert report["performance"]["candidate"]["per_intent"]["exchange_rate"]["recall"] == 0.0
    assert report["scalability"]["latency_ms"]["p95"] > 0
    text = maturity_markdown(report, judged["missing"], "Maturity report: test")
    assert "**Gate: REJECTED**" in text and "3-fold cross-validation on 60" in text
    assert "| exchange_rate | 0.000 |" in text


def _evaluation(truth: list[str], predicted: list[str]) -> dict:
    from nlu.evaluation import intent_report

    return {"intent_report": intent_report(truth, predicted), "truth": truth,
            "predicted": predicted}


def test_a_few_flipped_examples_are_noise_a_lost_intent_is_not() -> None:
    from learning.release import GatePolicy, recall_drops

    truth = ["a"] * 12 + ["b"] * 12
    production = _evaluation(truth, ["a"] * 12 + ["b"] * 12)
    # Three of a's twelve go wrong: recall -0.25, beyond the margin, but a sign test gives
    # p = 1/8 for 3 losses and no gains: two equally good models differ like that.
    noisy = _evaluation(truth, ["b"] * 3 + ["a"] * 9 + ["b"] * 12)
    assert recall_drops(noisy, production, GatePolicy()) == []
    lost = _evaluation(truth, ["b"] * 12 + ["b"] * 12)
    [drop] = recall_drops(lost, production, GatePolicy())
    assert drop["intent"] == "a" and drop["drop"] == 1.0 and drop["p_value"] < 0.001
    # Gains on other examples of the same intent offset losses (a paired count).
    production = _evaluation(truth, ["b"] * 6 + ["a"] * 6 + ["b"] * 12)
    swapped = _evaluation(truth, ["a"] * 6 + ["b"] * 6 + ["b"] * 12)
    assert recall_drops(swapped, production, GatePolicy()) == []
