"""Is a candidate model fit to replace production? The maturity report and the release gate.

Both models are measured on the same held-out set (never trained on) and on the regression set
(past mistakes staff corrected). The gate is deliberately a list of plain rules with their
thresholds in one policy, so a rejection always comes with reasons an operator can read.
"""

from __future__ import annotations

import math
import random
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.config import Settings
from nlu.training import TrainParams, train


@dataclass(frozen=True)
class GatePolicy:
    accuracy_tolerance: float = 0.01  # candidate accuracy >= production's minus this
    recall_drop_margin: float = 0.15  # no intent's recall may fall by more than this...
    recall_drop_alpha: float = 0.01  # ...unless a paired sign test says it may be chance
    min_intent_support: int = 5  # intents with fewer held-out examples are not judged
    regression_min_accuracy: float = 0.8  # share of corrected past mistakes it must get right
    latency_p95_budget_ms: float = 50.0  # warm single-message classification, p95

    @classmethod
    def from_settings(cls, settings: Settings) -> GatePolicy:
        return cls(accuracy_tolerance=settings.gate_accuracy_tolerance,
                   recall_drop_margin=settings.gate_recall_drop,
                   recall_drop_alpha=settings.gate_recall_alpha,
                   min_intent_support=settings.gate_min_support,
                   regression_min_accuracy=settings.gate_regression_min_accuracy,
                   latency_p95_budget_ms=settings.gate_latency_p95_ms)


@dataclass
class GateDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    checks: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _recalls(evaluation: dict, min_support: int) -> dict[str, float]:
    return {name: float(entry["recall"]) for name, entry in evaluation["intent_report"].items()
            if isinstance(entry, dict) and "support" in entry and "avg" not in name
            and entry["support"] >= min_support}


def _sign_test(worse: int, better: int) -> float:
    """One-sided p-value of ``worse`` or more losses out of ``worse + better`` discordant
    examples if both models were equally good (exact binomial, p = 1/2)."""
    n = worse + better
    return sum(math.comb(n, k) for k in range(worse, n + 1)) / 2 ** n if n else 1.0


def recall_drops(candidate: dict, production: dict, policy: GatePolicy) -> list[dict]:
    """Intents whose recall fell by more than the margin, and not by chance.

    On the same held-out examples, count the intent's examples production got right and the
    candidate wrong, and the reverse: the net loss over the support is the recall drop, and
    a sign test on the two counts says whether it could be noise (with a dozen examples per
    intent, two or three flips happen between equally good models).
    """
    truth, ours, theirs = (candidate.get("truth"), candidate.get("predicted"),
                           production.get("predicted"))
    paired = truth is not None and ours is not None and theirs is not None \
        and production.get("truth") == truth
    drops = []
    truth, ours, theirs = truth or [], ours or [], theirs or []
    for name, recall in _recalls(production, policy.min_intent_support).items():
        if paired:
            rows = [k for k, t in enumerate(truth) if t == name]
            worse = sum(theirs[k] == name != ours[k] for k in rows)
            better = sum(ours[k] == name != theirs[k] for k in rows)
            drop, p_value = (worse - better) / len(rows), _sign_test(worse, better)
        else:
            drop, p_value = recall - _recalls(candidate, 0).get(name, 0.0), 0.0
        if drop > policy.recall_drop_margin and p_value < policy.recall_drop_alpha:
            drops.append({"intent": name, "drop": round(drop, 4), "p_value": p_value})
    return sorted(drops, key=lambda d: -d["drop"])


def judge(candidate: dict, production: dict | None, policy: GatePolicy) -> GateDecision:
    """``candidate``/``production``: ``{"heldout": evaluation, "regression": evaluation|None}``
    as made by ``nlu.evaluation.evaluate``. No production model: only the absolute rules."""
    decision = GateDecision(passed=True)

    def check(name: str, ok: bool, detail: str) -> None:
        decision.checks.append({"check": name, "passed": ok, "detail": detail})
        if not ok:
            decision.passed = False
            decision.reasons.append(detail)

    held = candidate["heldout"]["summary"]
    if production is not None:
        base = production["heldout"]["summary"]
        floor = base["accuracy"] - policy.accuracy_tolerance
        check("accuracy", held["accuracy"] >= floor,
              f"held-out accuracy {held['accuracy']:.4f} vs production {base['accuracy']:.4f} "
              f"(tolerance {policy.accuracy_tolerance})")
        worst = recall_drops(candidate["heldout"], production["heldout"], policy)
        check("per-intent recall", not worst,
              f"no intent's recall drops by more than {policy.recall_drop_margin:.2f} "
              f"(sign test, alpha {policy.recall_drop_alpha})" if not worst else
              f"recall drops beyond {policy.recall_drop_margin:.2f}: " + ", ".join(
                  f"{d['intent']} -{d['drop']:.2f} (p={d['p_value']:.1g})" for d in worst[:10]))
    else:
        check("accuracy", True, f"held-out accuracy {held['accuracy']:.4f}; no production "
                                "model to compare with")
    regression = candidate.get("regression")
    if regression is not None:
        accuracy = regression["summary"]["accuracy"]
        check("regression set", accuracy >= policy.regression_min_accuracy,
              f"regression set accuracy {accuracy:.4f} on {regression['summary']['examples']} "
              f"corrected mistakes (needs {policy.regression_min_accuracy:.2f})")
    latency = held.get("latency_ms", {}).get("p95")
    if latency is not None:
        check("latency", latency <= policy.latency_p95_budget_ms,
              f"p95 latency {latency:.1f} ms (budget {policy.latency_p95_budget_ms:.0f} ms)")
    return decision


def cross_validate(texts: Sequence[str], labels: Sequence[str], params: TrainParams,
                   folds: int = 3, max_examples: int = 1500, seed: int = 42,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, object]:
    """Accuracy and macro-F1 over stratified folds of a subsample: how stable training is.

    A subsample keeps this affordable on a laptop CPU; the report says how many were used.
    """
    from nlu.classifier import IntentClassifier
    from nlu.evaluation import evaluate

    rng = random.Random(seed)
    rows = list(range(len(texts)))
    rng.shuffle(rows)
    rows = rows[:max_examples]
    by_label: dict[str, list[int]] = {}
    for row in rows:
        by_label.setdefault(labels[row], []).append(row)
    fold_of: dict[int, int] = {}
    for members in by_label.values():
        for position, row in enumerate(members):
            fold_of[row] = position % folds
    accuracies, f1s = [], []
    for fold in range(folds):
        train_rows = [r for r in rows if fold_of[r] != fold]
        test_rows = [r for r in rows if fold_of[r] == fold]
        if not test_rows or len({labels[r] for r in train_rows}) < 2:
            continue
        with tempfile.TemporaryDirectory(prefix="helpdesk-fold-") as tmp:
            result = train([texts[r] for r in train_rows], [labels[r] for r in train_rows],
                           params, Path(tmp) / "model", progress=False)
            classifier = IntentClassifier.load(result.path)
            measured = evaluate(classifier, [texts[r] for r in test_rows],
                                [labels[r] for r in test_rows], oos_label=None,
                                measure_latency=False)
        accuracies.append(float(measured["summary"]["accuracy"]))
        f1s.append(float(measured["summary"]["macro_f1"]))
        if progress:
            progress(fold + 1, folds)

    def spread(values: list[float]) -> dict[str, float]:
        return {"mean": statistics.fmean(values) if values else float("nan"),
                "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
                "min": min(values, default=float("nan")), "max": max(values, default=float("nan"))}

    return {"folds": len(accuracies), "examples": len(rows), "accuracy": spread(accuracies),
            "macro_f1": spread(f1s), "fold_accuracy": accuracies}


def _weakest(evaluation: dict, limit: int = 10) -> list[tuple[str, dict]]:
    rows = [(name, entry) for name, entry in evaluation["intent_report"].items()
            if isinstance(entry, dict) and "support" in entry and "avg" not in name]
    return sorted(rows, key=lambda kv: (kv[1]["recall"], kv[1]["f1-score"]))[:limit]


def maturity(candidate: dict, production: dict | None, reliability: dict | None,
             size_bytes: int, decision: GateDecision) -> dict[str, object]:
    """The report's three parts as data: reliability, performance, scalability (and the gate)."""
    held = candidate["heldout"]["summary"]

    def performance(evaluation: dict | None) -> dict[str, object] | None:
        if evaluation is None:
            return None
        summary = evaluation["heldout"]["summary"]
        regression = evaluation.get("regression")
        return {
            "accuracy": summary["accuracy"], "macro_f1": summary["macro_f1"],
            "examples": summary["examples"],
            "oos_recall": summary.get("oos_recall"),
            "regression_accuracy": regression["summary"]["accuracy"] if regression else None,
            "per_intent": {name: {"recall": e["recall"], "f1": e["f1-score"],
                                  "support": e["support"]}
                           for name, e in evaluation["heldout"]["intent_report"].items()
                           if isinstance(e, dict) and "support" in e and "avg" not in name},
        }

    return {
        "reliability": reliability,
        "performance": {"candidate": performance(candidate),
                        "production": performance(production)},
        "scalability": {"latency_ms": held.get("latency_ms"),
                        "production_latency_ms":
                            production["heldout"]["summary"].get("latency_ms")
                            if production else None,
                        "model_size_bytes": size_bytes},
        "gate": decision.to_dict(),
    }


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def maturity_markdown(report: dict, candidate: dict, title: str) -> str:
    gate = report["gate"]
    lines = [f"# {title}", "",
             f"**Gate: {'PASSED' if gate['passed'] else 'REJECTED'}**", ""]
    lines += [f"- {'ok' if c['passed'] else 'FAIL'} {c['check']}: {c['detail']}"
              for c in gate["checks"]]
    reliability = report["reliability"]
    lines += ["", "## Reliability", ""]
    if reliability and reliability.get("folds"):
        acc, f1 = reliability["accuracy"], reliability["macro_f1"]
        lines.append(f"{reliability['folds']}-fold cross-validation on {reliability['examples']} "
                     f"training examples: accuracy {acc['mean']:.4f} ± {acc['std']:.4f} "
                     f"(min {acc['min']:.4f}, max {acc['max']:.4f}); macro-F1 {f1['mean']:.4f} "
                     f"± {f1['std']:.4f}.")
    else:
        lines.append("Not measured for this run.")
    performance = report["performance"]
    ours, theirs = performance["candidate"], performance["production"] or {}
    lines += ["", "## Performance (same held-out and regression sets)", "",
              "| measure | candidate | production |", "|---|---|---|"]
    for key in ("accuracy", "macro_f1", "oos_recall", "regression_accuracy", "examples"):
        lines.append(f"| {key} | {_fmt(ours.get(key))} | {_fmt(theirs.get(key))} |")
    lines += ["", "Weakest intents of the candidate:", "",
              "| intent | recall | F1 | support | production recall |", "|---|---|---|---|---|"]
    for name, entry in _weakest(candidate["heldout"]):
        before = (theirs.get("per_intent") or {}).get(name, {}).get("recall")
        lines.append(f"| {name} | {entry['recall']:.3f} | {entry['f1-score']:.3f} | "
                     f"{entry['support']:.0f} | {_fmt(before)} |")
    scale = report["scalability"]
    latency, before = scale["latency_ms"] or {}, scale["production_latency_ms"] or {}
    lines += ["", "## Scalability", "",
              f"- latency p50 {_fmt(latency.get('p50'))} ms, p95 {_fmt(latency.get('p95'))} ms "
              f"(production: p50 {_fmt(before.get('p50'))}, p95 {_fmt(before.get('p95'))})",
              f"- model archive {scale['model_size_bytes'] / 1e6:.1f} MB", ""]
    return "\n".join(lines)
