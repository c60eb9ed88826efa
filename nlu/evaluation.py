"""Measuring an intent model on held-out data (``helpdesk evaluate``, benchmarks, release gate).

Per-intent figures follow Rasa's ``intent_report.json`` layout (``precision``, ``recall``,
``f1-score``, ``support``, ``confused_with``; ``accuracy``, ``macro avg``, ``weighted avg``),
so tools that read Rasa's reports read ours.

Out of scope, as in Larson et al. 2019 (CLINC150): an in-scope message counts as right only
if its intent is right and it was not rejected; out-of-scope recall is the share of
out-of-scope messages rejected (predicted as the out-of-scope intent or under the threshold).
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.files import write_atomic
from nlu.calibration import expected_calibration_error
from nlu.classifier import IntentClassifier, Prediction


def intent_report(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, object]:
    from sklearn.metrics import classification_report

    labels = sorted(set(truth) | set(predicted))
    report: dict[str, object] = classification_report(
        truth, predicted, labels=labels, output_dict=True, zero_division=0)
    confusions: dict[str, Counter] = {}
    for t, p in zip(truth, predicted, strict=True):
        if t != p:
            confusions.setdefault(t, Counter())[p] += 1
    for label in labels:
        entry = report.get(label)
        if isinstance(entry, dict):
            entry["confused_with"] = dict(confusions.get(label, Counter()).most_common(3))
    report["accuracy"] = float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)]))
    report.pop("micro avg", None)
    return report


def oos_metrics(predictions: Sequence[Prediction], truth: Sequence[str], oos_label: str,
                target_in_scope_accuracy: float = 0.9) -> dict[str, float]:
    """Out-of-scope detection: AUROC, recall with the model's own rule, recall at a target."""
    from sklearn.metrics import roc_auc_score

    is_oos = np.array([t == oos_label for t in truth])
    if not is_oos.any() or is_oos.all():
        return {}
    # In-scope score: what the model's threshold reads (0 when the OOS class wins).
    score = np.array([0.0 if p.intent == oos_label else p.in_scope for p in predictions])
    right = np.array([p.intent == t for p, t in zip(predictions, truth, strict=True)])
    rejected = np.array([p.out_of_scope for p in predictions])
    metrics = {
        "oos_auroc": float(roc_auc_score(~is_oos, score)),
        "oos_recall": float(rejected[is_oos].mean()),
        "in_scope_accuracy": float((right & ~rejected)[~is_oos].mean()),
    }
    threshold = threshold_for_accuracy(score, right, is_oos, target_in_scope_accuracy)
    metrics[f"oos_recall_at_in_scope_accuracy_{target_in_scope_accuracy:g}"] = float(
        (score < threshold)[is_oos].mean())
    return metrics


def threshold_for_accuracy(score: np.ndarray, right: np.ndarray, is_oos: np.ndarray,
                           floor: float) -> float:
    """The highest threshold (a message is kept when its score reaches it) at which the kept,
    right in-scope messages are still ``floor`` of all in-scope ones; the lowest score when
    none is. Raising a threshold only drops messages, so in-scope accuracy only falls and
    out-of-scope recall only rises: this threshold gives the best recall at that accuracy."""
    candidates = np.unique(score)[::-1]
    kept_right = np.sort(score[right & ~is_oos])
    counts = len(kept_right) - np.searchsorted(kept_right, candidates, side="left")
    reached = counts / max(int((~is_oos).sum()), 1) >= floor
    return float(candidates[np.argmax(reached)] if reached.any() else candidates[-1])


def latency_ms(classifier: IntentClassifier, texts: Sequence[str],
               n: int = 300) -> dict[str, float]:
    """Warm single-message latency in this process (what the bot pays per message)."""
    sample = list(texts[: max(1, n)])
    for text in sample[:20]:
        classifier.predict(text)
    timings = []
    for text in sample:
        started = time.perf_counter()
        classifier.predict(text)
        timings.append((time.perf_counter() - started) * 1000)
    return {"p50": float(np.percentile(timings, 50)), "p95": float(np.percentile(timings, 95)),
            "n": float(len(timings))}


def evaluate(classifier: IntentClassifier, texts: Sequence[str], truth: Sequence[str],
             oos_label: str | None = "out_of_scope", measure_latency: bool = True,
             oos_target_accuracy: float = 0.9) -> dict:
    """Everything ``helpdesk evaluate`` reports; ``oos_target_accuracy`` is the in-scope
    accuracy at which out-of-scope recall is also read off the curve."""
    predictions = classifier.predict_batch(list(texts))
    predicted = [p.intent for p in predictions]
    report = intent_report(truth, predicted)
    correct = np.array([p == t for p, t in zip(predicted, truth, strict=True)])
    summary: dict[str, object] = {
        "accuracy": report["accuracy"],
        "macro_f1": report["macro avg"]["f1-score"],  # type: ignore[index]
        "ece": expected_calibration_error(np.array([p.confidence for p in predictions]),
                                          correct),
        "examples": len(texts),
    }
    if oos_label:
        summary.update(oos_metrics(predictions, truth, oos_label, oos_target_accuracy))
    if measure_latency:
        summary["latency_ms"] = latency_ms(classifier, texts)
    labels = sorted(set(truth) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(truth, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    return {"summary": summary, "intent_report": report,
            "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
            "truth": list(truth), "predicted": predicted}


def write_report(result: dict, out_dir: Path, title: str = "Intent evaluation") -> Path:
    """intent_report.json, confusion_matrix.json and .png, summary.json and report.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "intent_report.json": result["intent_report"],
        "confusion_matrix.json": result["confusion_matrix"],
        "summary.json": result["summary"],
    }
    for name, content in files.items():
        write_atomic(out_dir / name, json.dumps(content, indent=2) + "\n")
    plot_confusion(result["confusion_matrix"], out_dir / "confusion_matrix.png")
    summary = result["summary"]
    lines = [f"# {title}", "", "| measure | value |", "|---|---|"]
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:.2f}" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.4f}"
        lines.append(f"| {key} | {value} |")
    report = result["intent_report"]
    per_intent = sorted(((k, v) for k, v in report.items() if isinstance(v, dict)
                         and "support" in v and "avg" not in k), key=lambda kv: kv[1]["f1-score"])
    lines += ["", "## Weakest intents", "", "| intent | precision | recall | F1 | support | "
              "confused with |", "|---|---|---|---|---|---|"]
    for name, entry in per_intent[:15]:
        confused = ", ".join(f"{k} ({v})" for k, v in entry.get("confused_with", {}).items())
        lines.append(f"| {name} | {entry['precision']:.3f} | {entry['recall']:.3f} | "
                     f"{entry['f1-score']:.3f} | {entry['support']:.0f} | {confused} |")
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def plot_confusion(confusion: dict, path: Path) -> None:
    """The row-normalised confusion matrix as a PNG (also a model's picture in the console)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, matrix = confusion["labels"], np.array(confusion["matrix"], dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    size = max(6.0, len(labels) * 0.18)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)))
    axes.set_yticks(range(len(labels)))
    axes.set_xticklabels(labels, rotation=90, fontsize=6)
    axes.set_yticklabels(labels, fontsize=6)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.tight_layout()
    partial = path.with_name(path.name + ".tmp")  # a reader never sees half a picture
    figure.savefig(partial, dpi=110, format="png")
    plt.close(figure)
    os.replace(partial, path)


def load_any(path: Path, backend: str = "auto", threads: int | None = 2) -> IntentClassifier:
    """An intent model folder, or the BertIntentClassifier inside a Rasa model archive."""
    path = Path(path)
    if path.is_dir():
        return IntentClassifier.load(path, backend=backend, threads=threads)
    if not tarfile.is_tarfile(path):
        raise ValueError(f"{path}: neither an intent model folder nor a Rasa model archive")
    # The loaded model keeps weights and tokenizer in memory, so the files can go at once.
    with tempfile.TemporaryDirectory(prefix="helpdesk-eval-") as tmp, tarfile.open(path) as archive:
        members = [m for m in archive.getmembers()
                   if "BertIntentClassifier" in m.name and (m.isfile() or m.isdir())]
        if not members:
            raise ValueError(f"{path}: this Rasa model has no BertIntentClassifier")
        archive.extractall(tmp, members=members)  # our own model archives
        [meta] = list(Path(tmp).rglob("intent_model.json"))
        return IntentClassifier.load(meta.parent, backend=backend, threads=threads)
