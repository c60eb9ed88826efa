"""Calibrated confidences and the out-of-scope threshold, both fitted on validation data.

A fine-tuned network is over-confident; dividing its logits by one temperature fitted to the
validation set (Guo et al. 2017, "On Calibration of Modern Neural Networks") makes a 0.8
confidence mean right about 80 % of the time, which is what a fallback threshold needs.
"""

from __future__ import annotations

import numpy as np
import torch

# Below this many validation examples, no temperature or threshold is learned from them.
MIN_EXAMPLES = 50


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 200) -> float:
    """The temperature minimising validation negative log-likelihood."""
    if len(labels) == 0:
        return 1.0
    logits = logits.detach().float()
    log_t = torch.zeros(1, requires_grad=True)  # optimise log T so that T stays positive
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter)
    loss_fn = torch.nn.CrossEntropyLoss()

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = loss_fn(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimiser.step(closure)
    temperature = float(log_t.exp())
    return float(min(max(temperature, 0.05), 20.0))


def expected_calibration_error(confidences: np.ndarray, correct: np.ndarray,
                               bins: int = 15) -> float:
    """ECE with equal-width bins: how far confidence is from accuracy, weighted by bin size."""
    confidences = np.asarray(confidences, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if confidences.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidences > low) & (confidences <= high)
        if in_bin.any():
            ece += in_bin.mean() * abs(confidences[in_bin].mean() - correct[in_bin].mean())
    return float(ece)


def choose_oos_threshold(in_scope_conf: np.ndarray, in_scope_correct: np.ndarray,
                         oos_conf: np.ndarray, max_in_scope_loss: float = 0.02) -> float:
    """The confidence under which a message is treated as out of scope.

    With out-of-scope validation examples, pick the threshold that maximises in-scope
    accuracy-with-rejection plus out-of-scope recall (Youden's J), among thresholds that
    reject at most ``max_in_scope_loss`` of the correctly classified in-scope messages.
    Without them, take the largest threshold within that budget: rejecting a few wrong
    in-scope answers is then the only evidence there is. With fewer than ``MIN_EXAMPLES``
    correct in-scope answers there is no evidence at all, and the threshold is 0 (only the
    out-of-scope intent and Rasa's configured fallback apply).
    """
    in_scope_conf = np.asarray(in_scope_conf, dtype=float)
    in_scope_correct = np.asarray(in_scope_correct, dtype=bool)
    oos_conf = np.asarray(oos_conf, dtype=float)
    if in_scope_conf.size == 0:
        return 0.0
    correct_conf = np.sort(in_scope_conf[in_scope_correct])
    if correct_conf.size < MIN_EXAMPLES:
        return 0.0
    budget = int(np.floor(max_in_scope_loss * correct_conf.size))
    ceiling = float(correct_conf[budget])  # rejecting below this loses <= budget answers
    candidates = np.unique(np.concatenate([in_scope_conf, oos_conf, [0.0]]))
    candidates = candidates[candidates <= ceiling]
    if oos_conf.size == 0:
        return float(candidates.max()) if candidates.size else 0.0
    best, best_score = 0.0, -np.inf
    for threshold in candidates:
        accepted_right = np.mean((in_scope_conf >= threshold) & in_scope_correct)
        oos_recall = np.mean(oos_conf < threshold)
        score = accepted_right + oos_recall
        if score > best_score:
            best, best_score = float(threshold), score
    return best


def rescale(confidence: float, learned: float, configured: float) -> float:
    """Monotone map sending ``learned`` to ``configured`` (0 and 1 stay fixed).

    What the Rasa component applies so that the learned out-of-scope threshold lands on
    ``FallbackClassifier``'s; anything that consumes its confidences (the retriever's intent
    boost, when it is calibrated) applies the same map.
    """
    if learned <= 0.0 or learned >= 1.0:
        return confidence
    if confidence < learned:
        return confidence * configured / learned
    return configured + (confidence - learned) * (1.0 - configured) / (1.0 - learned)
