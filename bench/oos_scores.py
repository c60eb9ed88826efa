"""Out-of-scope scores one by one, and two-score fusions, studied on CLINC150.

The served model decides out of scope by a logistic regression over the single scores of
``nlu/oos.py`` (fitted on the validation split when training); this study shows what each of
them, and rank-sum fusions of a head score with a distance score, would give on its own, to
explain what the regression combines. Every choice (which score, its threshold) is made on the
validation split; the test split only reports, and its curve's point at the target is read
off as an oracle.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from nlu import oos
from nlu.evaluation import threshold_for_accuracy

BATCH = 128


def _forward(classifier, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    logits, embeddings = [], []
    for start in range(0, len(texts), BATCH):
        chunk_logits, chunk_embeddings = classifier.logits_and_embeddings(
            texts[start: start + BATCH])
        if chunk_embeddings is None:
            raise ValueError("this backend gives no embeddings: load the model with torch")
        logits.append(chunk_logits)
        embeddings.append(chunk_embeddings)
    embedded = np.concatenate(embeddings)
    return np.concatenate(logits), embedded / np.linalg.norm(embedded, axis=1, keepdims=True)


def _scores(classifier, texts: list[str], reference: oos.Reference, oos_index: int
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Predicted label ids and the single in-scope scores of ``nlu.oos`` per text."""
    logits, embedded = _forward(classifier, texts)
    scaled = logits / classifier.meta.calibration.temperature
    probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    values = oos.features(probs, scaled, embedded, reference, oos_index)
    return probs.argmax(axis=1), dict(zip(oos.FEATURES, values.T, strict=True))


def _fuse(scores: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> None:
    """Add rank-sum fusions of a head score with a distance score; ranks are taken against the
    validation in-scope scores, so the fusion needs no scale of its own."""
    for head in ("confidence", "energy"):
        for distance in ("knn1", "knn10"):
            scores[f"{head}+{distance}"] = sum(
                np.searchsorted(np.sort(reference[name]), scores[name]) / len(reference[name])
                for name in (head, distance))


def _kept_right(score: np.ndarray, threshold: float, right: np.ndarray,
                is_oos: np.ndarray) -> tuple[float, float]:
    kept = score >= threshold
    return float((right & kept)[~is_oos].mean()), float((~kept)[is_oos].mean())


def study(classifier, train: list, val: list, test: list, oos_label: str,
          loss_budget: float, target: float = 0.96) -> dict:
    """Each score's test AUROC and oracle point at ``target``; the score with the best
    validation AUROC, thresholded so validation in-scope accuracy loses at most
    ``loss_budget``, and what that gives on test."""
    oos_index = classifier.labels.index(oos_label)
    reference = oos.Reference(_forward(classifier, [t for t, _ in train])[1],
                              np.array([classifier.labels.index(i) for _, i in train]),
                              oos_index)
    splits = {}
    for name, rows in (("val", val), ("test", test)):
        truth = np.array([classifier.labels.index(i) for _, i in rows])
        predicted, scores = _scores(classifier, [t for t, _ in rows], reference, oos_index)
        splits[name] = (predicted == truth, truth == oos_index, predicted == oos_index, scores)
    val_in_scope = {k: v[~splits["val"][1]] for k, v in splits["val"][3].items()}
    for _, _, _, scores in splits.values():
        _fuse(scores, val_in_scope)
    figures: dict = {"scores": {}, "loss_budget": loss_budget}
    for name in splits["test"][3]:
        # The out-of-scope class still rejects on its own, as in the served rule.
        (val_score, val_right, val_oos), (test_score, test_right, test_oos) = (
            (np.where(says_oos, scores[name].min() - 1, scores[name]), right, is_oos)
            for right, is_oos, says_oos, scores in (splits["val"], splits["test"]))
        oracle = _kept_right(test_score, threshold_for_accuracy(
            test_score, test_right, test_oos, target), test_right, test_oos)[1]
        threshold = threshold_for_accuracy(val_score, val_right, val_oos,
                                           float(val_right[~val_oos].mean()) - loss_budget)
        in_scope, recall = _kept_right(test_score, threshold, test_right, test_oos)
        figures["scores"][name] = {
            "val_auroc": float(roc_auc_score(~val_oos, val_score)),
            "test_auroc": float(roc_auc_score(~test_oos, test_score)),
            f"test_oos_recall_at_in_scope_accuracy_{target:g}": oracle,
            "test_in_scope_accuracy": in_scope, "test_oos_recall": recall}
    figures["chosen"] = max(figures["scores"], key=lambda n: figures["scores"][n]["val_auroc"])
    return figures
