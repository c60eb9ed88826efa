"""Out-of-scope scores beyond the classifier's confidence, studied on CLINC150.

The served rule rejects a message when the out-of-scope class wins or the calibrated top
confidence is below a learned threshold. With MiniLM-L6 that rule reaches CLINC150's target
(in-scope >= 96 % with OOS recall >= 75 %) only in halves, so this study asks whether the
distance of a message's sentence embedding to the training examples (k-nearest neighbours, as
in the example memory) separates out-of-scope messages better than, or together with, the
head's confidence (and whether a logistic regression over all the scores does better still).
Every choice (which score, its threshold) is made on the validation split;
the test split only reports, and its curve's point at the target is read off as an oracle.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from nlu.evaluation import threshold_for_accuracy

BATCH = 128


def _forward(classifier, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
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


class _Training:
    """The in-scope training examples' embeddings, their class means and the whitening of
    the shared covariance (for the Mahalanobis distance of Lee et al. 2018)."""

    def __init__(self, embedded: np.ndarray, labels: np.ndarray) -> None:
        self.bank = embedded
        classes = np.unique(labels)
        self.means = np.stack([embedded[labels == c].mean(axis=0) for c in classes])
        centred = embedded - self.means[np.searchsorted(classes, labels)]
        covariance = centred.T @ centred / len(centred) + 1e-4 * np.eye(embedded.shape[1])
        self.whiten = np.linalg.cholesky(np.linalg.inv(covariance))

    def mahalanobis(self, embedded: np.ndarray) -> np.ndarray:
        """Squared distance to the nearest class mean."""
        x, m = embedded @ self.whiten, self.means @ self.whiten
        return ((x ** 2).sum(axis=1)[:, None] - 2 * x @ m.T + (m ** 2).sum(axis=1)).min(axis=1)


def _scores(classifier, texts: list[str], training: _Training, oos: int  # noqa: ANN001
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Predicted label ids and in-scope scores (higher = more in scope) per text."""
    logits, embedded = _forward(classifier, texts)
    scaled = logits / classifier.meta.calibration.temperature
    probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    predicted = probs.argmax(axis=1)
    in_scope = np.delete(np.arange(logits.shape[1]), oos)
    similarities = np.sort(embedded @ training.bank.T, axis=1)
    return predicted, {
        "confidence": probs.max(axis=1),  # the served rule's score
        "oos_class": 1 - probs[:, oos],
        "energy": np.log(np.exp(scaled[:, in_scope]).sum(axis=1)),
        "knn1": similarities[:, -1],
        "knn10": similarities[:, -10],
        "mahalanobis": -training.mahalanobis(embedded),
    }


def _learned(val: dict[str, np.ndarray], test: dict[str, np.ndarray],
             val_is_oos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A logistic regression over the single scores, fitted on validation; its strength is
    chosen by 5-fold AUROC there. Returns the out-of-fold validation scores (so that the
    threshold is not chosen on scores the model was fitted to) and the test scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    names = [n for n in val if "+" not in n]
    x_val = np.stack([val[n] for n in names], axis=1)
    mean, std = x_val.mean(axis=0), x_val.std(axis=0) + 1e-12
    x_val, x_test = (x_val - mean) / std, (np.stack([test[n] for n in names], 1) - mean) / std
    best = None
    for strength in (0.01, 0.1, 1.0):
        model = LogisticRegression(C=strength, class_weight="balanced", max_iter=1000)
        folds = cross_val_predict(model, x_val, ~val_is_oos, cv=5, method="decision_function")
        auroc = roc_auc_score(~val_is_oos, folds)
        if best is None or auroc > best[0]:
            best = (auroc, folds, model.fit(x_val, ~val_is_oos))
    return best[1], best[2].decision_function(x_test)


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


def study(classifier, train: list, val: list, test: list, oos_label: str,  # noqa: ANN001
          loss_budget: float, target: float = 0.96) -> dict:
    """Each score's test AUROC and oracle point at ``target``; the score with the best
    validation AUROC, thresholded so validation in-scope accuracy loses at most
    ``loss_budget``, and what that gives on test."""
    oos = classifier.labels.index(oos_label)
    in_scope = [(t, i) for t, i in train if i != oos_label]
    training = _Training(_forward(classifier, [t for t, _ in in_scope])[1],
                         np.array([classifier.labels.index(i) for _, i in in_scope]))
    splits = {}
    for name, rows in (("val", val), ("test", test)):
        truth = np.array([classifier.labels.index(i) for _, i in rows])
        predicted, scores = _scores(classifier, [t for t, _ in rows], training, oos)
        splits[name] = (predicted == truth, truth == oos, predicted == oos, scores)
    reference = {k: v[~splits["val"][1]] for k, v in splits["val"][3].items()}
    for _, _, _, scores in splits.values():
        _fuse(scores, reference)
    splits["val"][3]["learned"], splits["test"][3]["learned"] = _learned(
        splits["val"][3], splits["test"][3], splits["val"][1])
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
