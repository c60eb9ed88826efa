"""A learned out-of-scope score: the head's confidence together with how far a message lies
from the training examples.

The calibrated top confidence alone misses out-of-scope questions that the head maps
confidently onto some intent; their sentence embeddings are still far from every training
example. Six scores (higher = more in scope) are combined by a logistic regression fitted on
the validation split, its in-scope examples against its out-of-scope ones:

- ``confidence``: the served probability of the best intent;
- ``oos_class``: one minus the probability of the out-of-scope intent;
- ``energy``: log-sum-exp of the in-scope logits (Liu et al. 2020);
- ``knn1`` / ``knn10``: cosine similarity to the nearest and the 10th-nearest in-scope
  training example (the example memory's embeddings);
- ``mahalanobis``: minus the squared Mahalanobis distance to the nearest intent's mean under
  the shared covariance of the training embeddings (Lee et al. 2018).

On CLINC150 (``bench/oos_scores.py``) the regression separates out-of-scope questions better
than the confidence alone (the figures are in ``bench/results/``). The regression is kept only
when its out-of-fold validation AUROC beats the confidence's; it needs out-of-scope validation
examples (``MIN_OOS``), so a bot with a handful of them keeps the confidence rule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from nlu.memory import normalise

FEATURES = ("confidence", "oos_class", "energy", "knn1", "knn10", "mahalanobis")
MIN_OOS = 20  # out-of-scope validation examples needed to fit the regression
MIN_IN_SCOPE = 50
STRENGTHS = (0.01, 0.1, 1.0)  # inverse L2 strengths tried, chosen by out-of-fold AUROC
FOLDS = 5
COVARIANCE_RIDGE = 1e-4


class Reference:
    """The in-scope training embeddings, their intents' means and the whitening of their
    shared covariance: what the distance scores measure a message against."""

    def __init__(self, embeddings: np.ndarray, label_ids: np.ndarray,
                 oos_index: int | None) -> None:
        keep = np.asarray(label_ids) != (-1 if oos_index is None else oos_index)
        self.bank = normalise(np.asarray(embeddings)[keep])
        labels = np.asarray(label_ids)[keep]
        if len(self.bank) == 0:
            raise ValueError("no in-scope training examples to measure distances against")
        classes, inverse = np.unique(labels, return_inverse=True)
        self.means = np.stack([self.bank[labels == c].mean(axis=0) for c in classes])
        centred = self.bank - self.means[inverse]
        dim = self.bank.shape[1]
        covariance = centred.T @ centred / len(centred) + COVARIANCE_RIDGE * np.eye(dim)
        self.whiten = np.linalg.cholesky(np.linalg.inv(covariance)).astype(np.float32)
        self._white_means = self.means @ self.whiten
        self._white_norms = (self._white_means ** 2).sum(axis=1)

    def nearest(self, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Similarity to the nearest and to the 10th-nearest example (the farthest one when
        there are fewer than 10)."""
        similarity = unit @ self.bank.T
        k = min(10, similarity.shape[1])
        top = np.partition(similarity, similarity.shape[1] - k, axis=1)[:, -k:]
        return top.max(axis=1), top.min(axis=1)

    def mahalanobis(self, unit: np.ndarray) -> np.ndarray:
        """Squared distance to the nearest intent's mean."""
        x = unit @ self.whiten
        distances = (x ** 2).sum(axis=1)[:, None] - 2 * x @ self._white_means.T
        return (distances + self._white_norms).min(axis=1)


def features(probs: np.ndarray, scaled_logits: np.ndarray, embedded: np.ndarray,
             reference: Reference, oos_index: int) -> np.ndarray:
    """The six scores of ``FEATURES``, one row per message."""
    in_scope = np.delete(np.arange(scaled_logits.shape[1]), oos_index)
    logits = scaled_logits[:, in_scope]
    peak = logits.max(axis=1)
    energy = peak + np.log(np.exp(logits - peak[:, None]).sum(axis=1))
    unit = normalise(embedded)
    knn1, knn10 = reference.nearest(unit)
    return np.stack([probs.max(axis=1), 1.0 - probs[:, oos_index], energy, knn1, knn10,
                     -reference.mahalanobis(unit)], axis=1)


@dataclass
class OosScorer:
    """The fitted regression; stored in ``intent_model.json`` with the calibration."""

    mean: list[float]
    std: list[float]
    coef: list[float]
    intercept: float
    strength: float
    val_auroc: float  # out of fold, on the validation split

    def score(self, values: np.ndarray) -> np.ndarray:
        """P(in scope) under the regression (its classes weighted equally)."""
        z = (values - np.asarray(self.mean)) / np.asarray(self.std)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.coef) + self.intercept)))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> OosScorer:
        return cls(**values)  # type: ignore[arg-type]


def fit(values: np.ndarray, is_oos: np.ndarray, says_oos: np.ndarray,
        seed: int = 0) -> tuple[OosScorer, np.ndarray] | None:
    """Fit the regression on validation scores, or None when there are too few examples or
    it does not beat the confidence in out-of-fold AUROC (both rank the messages that the
    out-of-scope intent wins, ``says_oos``, last: the class rejects those anyway).

    Returns the scorer and the out-of-fold scores of the validation examples: a threshold
    chosen on the regression's own training data would be chosen on scores that are too good.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    is_oos, says_oos = np.asarray(is_oos, dtype=bool), np.asarray(says_oos, dtype=bool)
    if is_oos.sum() < MIN_OOS or (~is_oos).sum() < MIN_IN_SCOPE:
        return None
    mean, std = values.mean(axis=0), values.std(axis=0) + 1e-12
    z = (values - mean) / std
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    best: tuple[float, float, np.ndarray] | None = None
    for strength in STRENGTHS:
        model = LogisticRegression(C=strength, class_weight="balanced", max_iter=1000)
        out_of_fold = cross_val_predict(model, z, ~is_oos, cv=folds, method="decision_function")
        auroc = float(roc_auc_score(~is_oos, _last(out_of_fold, says_oos)))
        if best is None or auroc > best[0]:
            best = (auroc, strength, out_of_fold)
    assert best is not None
    auroc, strength, out_of_fold = best
    confidence = values[:, FEATURES.index("confidence")]
    if auroc <= float(roc_auc_score(~is_oos, _last(confidence, says_oos))):
        return None
    model = LogisticRegression(C=strength, class_weight="balanced", max_iter=1000).fit(
        z, ~is_oos)
    scorer = OosScorer(mean=mean.tolist(), std=std.tolist(), coef=model.coef_[0].tolist(),
                       intercept=float(model.intercept_[0]), strength=strength, val_auroc=auroc)
    return scorer, 1.0 / (1.0 + np.exp(-out_of_fold))


def _last(score: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``score`` with ``rows`` ranked below every other message."""
    return np.where(rows, score.min() - 1.0, score)
