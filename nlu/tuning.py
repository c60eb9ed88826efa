"""Hyperparameter search for the intent classifier (``helpdesk tune``), with Optuna.

Samplers: ``grid`` (a small grid over learning rate and epochs), ``random`` and ``tpe``
(Bayesian); a median pruner stops trials whose validation accuracy after an epoch is below
the median of earlier trials at that epoch. Studies live in an SQL database, so several
machines can work on one study when it is PostgreSQL. The best parameters are written to a
YAML params file that ``helpdesk data build`` merges into the rendered Rasa config.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from common.files import write_atomic
from nlu.training import Interrupted, TrainParams, train

if TYPE_CHECKING:
    import optuna  # imported lazily: the CLI's help must stay fast

SAMPLERS = ("grid", "random", "tpe")
GRID = {"learning_rate": [2e-5, 5e-5, 1e-4], "epochs": [1, 2, 3]}


def suggest(trial: optuna.Trial) -> dict[str, object]:
    """The search space (grid studies fix the parameters the grid does not cover)."""
    if trial.study.sampler.__class__.__name__ == "GridSampler":
        return {"learning_rate": trial.suggest_float("learning_rate", 2e-5, 1e-4, log=True),
                "epochs": trial.suggest_int("epochs", 1, 3)}
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 2e-4, log=True),
        "epochs": trial.suggest_int("epochs", 1, 4),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64]),
        "warmup_ratio": trial.suggest_float("warmup_ratio", 0.0, 0.2),
        "weight_decay": trial.suggest_float("weight_decay", 0.0, 0.1),
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.2),
    }


def _sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    if name == "grid":
        return optuna.samplers.GridSampler(GRID, seed=seed)  # type: ignore[arg-type]
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}")


def run_study(texts: Sequence[str], labels: Sequence[str], storage: str, study_name: str,
              sampler: str = "tpe", trials: int = 10, seed: int = 42,
              base: dict[str, object] | None = None, progress: bool = True) -> optuna.Study:
    """Run ``trials`` more trials of a (possibly shared, resumed) study; returns the study."""
    from collections import Counter

    import optuna

    if min(Counter(labels).values(), default=0) < 3:
        raise ValueError("tuning scores trials on a validation split, which needs at least "
                         "3 examples of every intent")

    study = optuna.create_study(
        study_name=study_name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=_sampler(sampler, seed), pruner=optuna.pruners.MedianPruner(n_warmup_steps=1))

    def objective(trial: optuna.Trial) -> float:
        params = TrainParams.from_dict({**(base or {}), **suggest(trial), "seed": seed})

        def report(epoch: int, accuracy: float) -> None:
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise Interrupted

        with tempfile.TemporaryDirectory(prefix="helpdesk-trial-") as tmp:
            try:
                result = train(texts, labels, params, Path(tmp) / "model", progress=progress,
                               on_epoch=report)
            except Interrupted:
                raise optuna.TrialPruned() from None
        return float(result.metrics["val_accuracy"])

    study.optimize(objective, n_trials=trials, gc_after_trial=True)
    return study


def write_params(path: Path, params: dict[str, object], source: str) -> Path:
    """Write the params file atomically; it carries where the values came from."""
    content = {"source": source, "params": params}
    return write_atomic(path, yaml.safe_dump(content, sort_keys=True))


def read_params(path: Path) -> dict[str, object]:
    """The tuned parameters, validated against ``TrainParams``; {} when there is no file."""
    if not path.is_file():
        return {}
    content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    params = content.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: 'params' must be a mapping")
    TrainParams.from_dict(params)  # raises on unknown names or bad values
    return params
