"""One retraining run, from data snapshot to a promoted or rejected model.

Steps: snapshot the training data (seed data plus staff-approved examples) with a content hash;
set aside the held-out set (a CSV no model trains on, plus a fixed share of the staff-labelled
examples, minus any text that is in the training data) and the regression set (past mistakes
staff corrected); optionally search hyperparameters; ``rasa train``; evaluate the candidate and
the production model on the same sets; write the maturity report; apply the release gate;
register the candidate, and promote it if it passed. The running bot pulls the new production
model by itself (``admin_api`` serves it as a Rasa model server).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from common.config import Settings
from common.files import write_atomic
from common.text import same_text_key
from learning.release import GatePolicy

Examples = dict[str, list[str]]
Transform = Callable[[Examples], Examples]


class Cancelled(Exception):
    """The job was cancelled; nothing it made is promoted."""


@dataclass
class Progress:
    """Where the pipeline reports; the worker writes it to the job row."""

    step: Callable[[str, float], None] = lambda name, fraction: None
    log: Callable[[str], None] = print
    timing: Callable[[str, float], None] = lambda name, seconds: None
    stop: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        if self.stop.is_set():
            raise Cancelled("cancelled")


@dataclass
class Snapshot:
    seed: Examples
    approved: Examples  # staff-approved examples that are trained on
    heldout: list[tuple[str, str]]  # (text, intent) never trained on
    regression: list[tuple[str, str]]  # corrected past mistakes
    approved_ids: list[int]
    skipped: list[str]  # approved examples not trained on: unknown intent, conflicting label


def held_out(text: str, share: float) -> bool:
    """A stable, content-based choice: the same text is held out in every run.

    The hash's input is frozen (lowered, spaces squeezed; not :func:`same_text_key`): changing
    it would move staff examples between training and the held-out set, and a model could then
    be judged on what an earlier one trained on."""
    key = " ".join(text.lower().split())
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return bucket < share * 0x100000000


def take_snapshot(session: Session, settings: Settings,
                  limit_per_intent: int | None) -> Snapshot:
    from learning import data_build
    from learning.models import ExampleSource, ExampleStatus, TrainingExample
    from nlu import datasets

    data_dir = settings.data_dir
    seed, _ = data_build.collect_examples(data_dir, limit_per_intent)
    rows = session.exec(select(TrainingExample)
                        .where(TrainingExample.status == ExampleStatus.approved.value)
                        .order_by(TrainingExample.id)).all()
    approved: Examples = {}
    staff_heldout: list[tuple[str, str]] = []
    regression: list[tuple[str, str]] = []
    skipped: list[str] = []
    # A customer's thumbs-up confirms the model's own label; a member of staff who labelled
    # the same words differently knows better, and confirmations that disagree with each
    # other confirm nothing.
    confirmed = ExampleSource.confirmed.value
    staff_labels = {same_text_key(r.text): r.intent for r in rows if r.source != confirmed}
    confirmed_labels: dict[str, set[str]] = {}
    for row in rows:
        if row.source == confirmed:
            confirmed_labels.setdefault(same_text_key(row.text), set()).add(row.intent)
    for row in rows:
        if row.intent not in seed:
            skipped.append(f"{row.id}:{row.intent}")
            continue
        if row.source == confirmed:
            # Trained on, never judged on: production got every one of them right, so a
            # held-out share of them would favour production.
            text = same_text_key(row.text)
            if staff_labels.get(text, row.intent) != row.intent or \
                    len(confirmed_labels[text]) > 1:
                skipped.append(f"{row.id}:{row.intent} (conflicting label)")
            else:
                approved.setdefault(row.intent, []).append(row.text)
            continue
        if row.source == ExampleSource.feedback.value:
            regression.append((row.text, row.intent))
        if held_out(row.text, settings.heldout_share):
            staff_heldout.append((row.text, row.intent))
        else:
            approved.setdefault(row.intent, []).append(row.text)
    csv = (datasets.load_examples_csv(Path(settings.heldout_csv)) if settings.heldout_csv
           else datasets.load_banking77("test", data_dir))
    heldout = [(e.text, e.intent) for e in csv if e.intent in seed] + staff_heldout
    return Snapshot(seed=seed, approved=approved, heldout=heldout, regression=regression,
                    approved_ids=[r.id for r in rows if r.id is not None], skipped=skipped)


def _without_trained(pairs: list[tuple[str, str]],
                     training: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """No model is judged on a text it was trained on (staff may have labelled a test text)."""
    trained = {same_text_key(t) for t, _ in training}
    return [(t, i) for t, i in pairs if same_text_key(t) not in trained]


def _fold_done(progress: Progress, done: int, total: int) -> None:
    progress.check()
    progress.step(f"reliability fold {done}/{total}", 0.8 + 0.1 * done / total)


def _evaluate(model_path: Path, heldout: list[tuple[str, str]],
              regression: list[tuple[str, str]]) -> dict:
    from nlu.evaluation import evaluate, load_any

    classifier = load_any(model_path)
    result: dict[str, dict | None] = {
        "heldout": evaluate(classifier, [t for t, _ in heldout], [i for _, i in heldout])}
    result["regression"] = (evaluate(classifier, [t for t, _ in regression],
                                     [i for _, i in regression], oos_label=None,
                                     measure_latency=False) if regression else None)
    return result


def _with_intents(evaluation: dict) -> dict:
    """A held-out evaluation's summary with recall, F1 and support per intent: what the
    registry keeps (the console compares intents across models from it)."""
    per_intent = {name: {"recall": row["recall"], "f1-score": row["f1-score"],
                         "support": row["support"]}
                  for name, row in evaluation["intent_report"].items()
                  if isinstance(row, dict) and "support" in row and "avg" not in name}
    return {**evaluation["summary"], "per_intent": per_intent}


def _classifier_config(build_dir: Path) -> dict:
    import yaml

    config = yaml.safe_load((build_dir / "config.yml").read_text(encoding="utf-8"))
    return next(c for c in config["pipeline"]
                if str(c.get("name", "")).endswith("BertIntentClassifier"))


class _Timer:
    def __init__(self, progress: Progress, name: str, fraction: float) -> None:
        self.progress, self.name = progress, name
        progress.check()
        progress.step(name, fraction)
        progress.log(f"step: {name}")
        self.started = time.monotonic()

    def __enter__(self) -> _Timer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.timing(self.name, time.monotonic() - self.started)


@dataclass
class _Sets:
    """What one run trains on and judges with."""

    seed: Examples
    approved: Examples
    training: list[tuple[str, str]]
    heldout: list[tuple[str, str]]
    regression: list[tuple[str, str]]


def _snapshot(engine: Any, settings: Settings, params: dict, progress: Progress,
              transform: Transform | None) -> tuple[Snapshot, _Sets]:
    with _Timer(progress, "snapshot", 0.02), Session(engine) as session:
        snap = take_snapshot(session, settings, params.get("limit_per_intent"))
    seed, approved = snap.seed, snap.approved
    if transform is not None:
        seed, approved = transform(seed), transform(approved)
    training = [(t, i) for part in (seed, approved) for i, ts in part.items() for t in ts]
    heldout = _without_trained(snap.heldout, training)
    progress.log(f"snapshot: {len(training)} training examples ({sum(map(len, approved.values()))}"
                 f" approved), {len(heldout)} held-out, {len(snap.regression)} regression"
                 + (f"; skipped {len(snap.skipped)} (unknown intent or conflicting label)"
                    if snap.skipped else ""))
    if not heldout:
        raise ValueError("the held-out set is empty: nothing to judge a candidate on")
    return snap, _Sets(seed, approved, training, heldout, snap.regression)


def _tune(sets: _Sets, trials: int, work_dir: Path, progress: Progress) -> dict[str, object]:
    if not trials:
        return {}
    with _Timer(progress, "tune", 0.05):
        from nlu.tuning import run_study

        study = run_study([t for t, _ in sets.training], [i for _, i in sets.training],
                          f"sqlite:///{work_dir / 'tuning.db'}", "retrain",
                          "tpe", trials, progress=False)
        tuned = dict(study.best_trial.params)
        progress.log(f"tuned: {tuned} (validation accuracy {study.best_value:.4f})")
        return tuned


def _build(sets: _Sets, snap: Snapshot, classifier_params: dict[str, object], work_dir: Path,
           progress: Progress) -> Any:
    from learning import data_build

    with _Timer(progress, "build", 0.1):
        build = data_build.build(work_dir / "build", examples=sets.seed,
                                 extra_examples=sets.approved,
                                 classifier_params=classifier_params or None)
        write_atomic(work_dir / "snapshot.json", json.dumps({
            "data_hash": build.data_hash, "approved_example_ids": snap.approved_ids,
            "training_examples": len(sets.training), "heldout": len(sets.heldout),
            "regression": len(sets.regression), "skipped": snap.skipped,
        }, indent=2))
        progress.log(f"data hash {build.data_hash}")
    return build


def _train(work_dir: Path, registry_dir: Path, progress: Progress) -> Path:
    from learning import train as bot_train

    with _Timer(progress, "train", 0.15):
        model_path = bot_train.train(
            work_dir / "build", registry_dir, log_path=work_dir / "train.log",
            stop=progress.stop,
            on_progress=lambda what, done: progress.step(f"train: {what}"[:64],
                                                         0.15 + 0.5 * done))
    progress.log(f"trained {model_path.name}")
    return model_path


def _judge_both(engine: Any, model_path: Path, sets: _Sets,
                progress: Progress) -> tuple[dict, dict | None, str | None]:
    """The candidate and the production model on the same held-out and regression sets."""
    from learning import registry

    with _Timer(progress, "evaluate", 0.7), Session(engine) as session:
        current = registry.production(session)
        production_path = Path(current.path) if current and Path(current.path).is_file() else None
        production_id = current.model_id if current else None
        candidate = _evaluate(model_path, sets.heldout, sets.regression)
        production = (_evaluate(production_path, sets.heldout, sets.regression)
                      if production_path else None)
    progress.log(f"candidate held-out accuracy {candidate['heldout']['summary']['accuracy']:.4f}"
                 + (f", production {production['heldout']['summary']['accuracy']:.4f}"
                    if production else ", no production model"))
    return candidate, production, production_id


def _reliability(sets: _Sets, settings: Settings, work_dir: Path,
                 progress: Progress) -> dict | None:
    from learning import release
    from nlu.rasa_component import train_params_of

    if settings.reliability_folds < 2:
        return None
    with _Timer(progress, "reliability", 0.8):
        return release.cross_validate(
            [t for t, _ in sets.training], [i for _, i in sets.training],
            train_params_of(_classifier_config(work_dir / "build")),
            folds=settings.reliability_folds, max_examples=settings.reliability_max_examples,
            progress=lambda done, total: _fold_done(progress, done, total))


def run(params: dict, progress: Progress, settings: Settings, work_dir: Path,
        registry_dir: Path, *, job_id: int | None = None, actor: str = "retraining",
        transform: Transform | None = None) -> dict:
    """Run the pipeline; returns what the job records as its result.

    ``transform`` rewrites the training examples before training (benchmarks use it to make
    deliberately worse candidates that the gate must reject); the evaluation sets never change.
    Steps: snapshot, tune (optional), build, train, evaluate against production, reliability,
    then the gate, the report and the registry.
    """
    from common.db import get_engine
    from learning import registry, release
    from learning.models import ModelStatus

    engine = get_engine()
    work_dir.mkdir(parents=True, exist_ok=True)
    snap, sets = _snapshot(engine, settings, params, progress, transform)
    classifier_params = _tune(sets, int(params.get("tune_trials") or 0), work_dir, progress)
    build = _build(sets, snap, classifier_params, work_dir, progress)
    model_path = _train(work_dir, registry_dir, progress)
    candidate, production, production_id = _judge_both(engine, model_path, sets, progress)
    reliability = _reliability(sets, settings, work_dir, progress)

    with _Timer(progress, "gate", 0.95), Session(engine) as session:
        decision = release.judge(candidate, production, GatePolicy.from_settings(settings))
        report = release.maturity(candidate, production, reliability,
                                  model_path.stat().st_size, decision)
        markdown = release.maturity_markdown(report, candidate,
                                             f"Maturity report: {model_path.name}")
        write_atomic(work_dir / "report.json", json.dumps(report, indent=2, default=str))
        write_atomic(work_dir / "report.md", markdown)
        from nlu.evaluation import plot_confusion

        plot_confusion(candidate["heldout"]["confusion_matrix"],
                       work_dir / "confusion_matrix.png")
        progress.check()  # a cancelled job registers nothing
        entry = registry.register(
            session, model_path, data_hash=build.data_hash,
            params={"job": params, "classifier": classifier_params},
            metrics={"candidate": _with_intents(candidate["heldout"]),
                     "regression": (candidate["regression"] or {}).get("summary"),
                     "production_model_id": production_id,
                     "production": _with_intents(production["heldout"]) if production else None,
                     "reliability": reliability},
            gate=decision.to_dict(), report=markdown, job_id=job_id)
        promoted = decision.passed and bool(params.get("promote", True))
        if promoted:
            registry.promote(session, entry, actor, reason="passed the release gate")
        elif not decision.passed:
            entry.status = ModelStatus.rejected
            session.add(entry)
        session.commit()
        for reason in decision.reasons:
            progress.log(f"gate: {reason}")
        progress.log(f"model {entry.model_id}: " + ("promoted to production" if promoted else
                     "rejected by the gate" if not decision.passed else "kept as a candidate"))
        pruned = registry.prune(session, registry_dir, settings.registry_keep, actor)
        session.commit()
        if pruned:
            progress.log(f"registry: deleted the archives of {len(pruned)} old models ("
                         f"{sum(r.size_bytes for r in pruned) / 1e6:.0f} MB); their records stay")
        return {"model_id": entry.model_id, "model_version_id": entry.id, "promoted": promoted,
                "gate": decision.to_dict(), "data_hash": build.data_hash,
                "accuracy": candidate["heldout"]["summary"]["accuracy"],
                "production_accuracy": (production["heldout"]["summary"]["accuracy"]
                                        if production else None),
                "report": str(work_dir / "report.md")}
