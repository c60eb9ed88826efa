"""``helpdesk data build``: validate ``data/`` and generate the Rasa training project from it.

Seed training data only ever comes from BANKING77's ``train.csv`` and the conversational
examples; ``test.csv`` is read only to refuse answers that leak its questions. The output is a
self-contained, deterministic folder (config, domain, data, manifest) that ``rasa train`` reads,
so two builds of the same inputs are byte-identical and a data hash identifies a model's data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from common.config import BOT_DIR, get_settings
from common.files import staged_dir
from common.text import same_text_key
from nlu import datasets
from nlu.datasets import DataError
from retrieval.answers import AnswerFileError, iter_answers_dir


@dataclass
class BuildResult:
    out_dir: Path
    intents: int
    examples: int
    answers: int
    dropped_conflicts: int
    data_hash: str


def _yaml_text(value: object) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100)


def _domain_intents(domain_dir: Path) -> dict[str, Path]:
    declared: dict[str, Path] = {}
    for path in sorted(domain_dir.glob("*.yml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entry in content.get("intents", []) or []:
            name = entry if isinstance(entry, str) else next(iter(entry))
            declared[name] = path
    return declared


def _rule_intents(data_dir: Path) -> dict[str, Path]:
    """Intents that hand-written rules and stories react to."""
    used: dict[str, Path] = {}
    for path in sorted(data_dir.rglob("*.yml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for section in ("rules", "stories"):
            for flow in content.get(section, []) or []:
                for step in flow.get("steps", []) or []:
                    if isinstance(step, dict) and "intent" in step:
                        used.setdefault(step["intent"], path)
    return used


def _bot_nlu_intents(data_dir: Path) -> set[str]:
    """Intents with examples written by hand under ``bot/data`` (with entity annotations,
    which the seed data in ``data/`` may not carry)."""
    intents = set()
    for path in sorted(data_dir.rglob("*.yml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entry in content.get("nlu", []) or []:
            if isinstance(entry, dict) and entry.get("intent") and entry.get("examples"):
                intents.add(entry["intent"])
    return intents


def _check_thresholds(config_path: Path) -> None:
    """BertIntentClassifier maps its learned threshold onto ``fallback_threshold``; that only
    works if FallbackClassifier falls back at the same value."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    pipeline = config.get("pipeline") or []
    ours = [c for c in pipeline if str(c.get("name", "")).endswith("BertIntentClassifier")]
    fallback = [c for c in pipeline if c.get("name") == "FallbackClassifier"]
    if ours and fallback:
        mapped = ours[0].get("fallback_threshold", 0.3)
        used = fallback[0].get("threshold", 0.3)
        if abs(float(mapped) - float(used)) > 1e-9:
            raise DataError(
                f"{config_path}: BertIntentClassifier fallback_threshold ({mapped}) must equal "
                f"FallbackClassifier threshold ({used})"
            )


def _check_answers(data_dir: Path, known_intents: set[str], held_out: dict[str, str]) -> int:
    count = 0
    for path, answer in iter_answers_dir(data_dir / "answers"):
        where = f"{path}: answer id {answer.id} ({answer.title!r})"
        if answer.intent is not None and answer.intent not in known_intents:
            raise DataError(f"{where}: unknown intent {answer.intent!r}")
        for question in answer.questions:
            copied = held_out.get(same_text_key(question))
            if copied is not None:
                raise DataError(
                    f"{where}: question variant {question!r} is copied from the held-out "
                    f"test set (test.csv: {copied!r}); write your own wording"
                )
        count += 1
    return count


def _nlu_yaml(examples: dict[str, list[str]]) -> str:
    lines = ['version: "3.1"', "nlu:"]
    for intent in sorted(i for i in examples if examples[i]):
        lines.append(f"  - intent: {intent}")
        lines.append("    examples: |")
        lines.extend(f"      - {text}" for text in examples[intent])
    return "\n".join(lines) + "\n"


def _faq_rules(intents: list[str]) -> str:
    rules = [
        {"rule": f"answer {intent}", "steps": [{"intent": intent}, {"action": "action_answer"}]}
        for intent in sorted(intents)
    ]
    return _yaml_text({"version": "3.1", "rules": rules})


def _clean_example(text: str) -> str:
    # One line, and no Rasa entity markup: "[x](y)" in a plain example would become an entity.
    return " ".join(text.split()).replace("](", "] (")


def collect_examples(
    data_dir: Path, limit_per_intent: int | None = None
) -> tuple[dict[str, list[str]], int]:
    """Training examples per intent: BANKING77 train plus conversational; never test.csv.

    A text that appears under two intents is kept only under the first (Rasa cannot learn both).
    """
    by_intent: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    dropped = 0
    sources = [(e.intent, e.text) for e in datasets.load_banking77("train", data_dir)]
    for intent, texts in datasets.load_conversational(data_dir).items():
        sources.extend((intent, text) for text in texts)
    for intent in datasets.banking77_intents(data_dir):
        by_intent.setdefault(intent, [])
    for intent, raw in sources:
        text = _clean_example(raw)
        key = text.lower()
        bucket = by_intent.setdefault(intent, [])
        if key in owner:
            dropped += owner[key] != intent
            continue
        if limit_per_intent is not None and len(bucket) >= limit_per_intent:
            continue
        owner[key] = intent
        bucket.append(text)
    for intent, texts in by_intent.items():
        if not texts:
            raise DataError(f"intent {intent!r} has no training examples")
    return by_intent, dropped


def labelled_examples(data_dir: Path, limit_per_intent: int | None = None
                      ) -> tuple[list[str], list[str]]:
    """``collect_examples`` as parallel lists of texts and intents, intents in sorted order."""
    examples, _ = collect_examples(data_dir, limit_per_intent)
    texts = [t for intent in sorted(examples) for t in examples[intent]]
    return texts, [intent for intent in sorted(examples) for _ in examples[intent]]


def _merge_approved(examples: dict[str, list[str]],
                    extra: dict[str, list[str]]) -> dict[str, list[str]]:
    """Approved examples, cleaned and de-duplicated; seed copies of their texts are removed."""
    unknown = sorted(set(extra) - set(examples))
    if unknown:
        raise DataError(f"approved examples name intents the bot does not have: {unknown}")
    approved: dict[str, list[str]] = {}
    seen: set[str] = set()
    for intent in sorted(extra):
        for raw in extra[intent]:
            text = _clean_example(raw)
            if text and text.lower() not in seen:
                seen.add(text.lower())
                approved.setdefault(intent, []).append(text)
    for texts in examples.values():
        texts[:] = [t for t in texts if t.lower() not in seen]
    return approved


def render_config(config_path: Path, classifier_params: dict[str, object] | None) -> str:
    """``config.yml`` with tuned parameters merged into the BertIntentClassifier entry."""
    text = config_path.read_text(encoding="utf-8")
    if not classifier_params:
        return text
    config = yaml.safe_load(text)
    entries = [c for c in config.get("pipeline", [])
               if str(c.get("name", "")).endswith("BertIntentClassifier")]
    if not entries:
        raise DataError(f"{config_path}: tuned parameters given but no BertIntentClassifier")
    entries[0].update(classifier_params)
    header = "# Rendered by `helpdesk data build` from bot/config.yml plus tuned parameters.\n"
    return header + _yaml_text(config)


def build(
    out_dir: Path,
    data_dir: Path | None = None,
    bot_dir: Path = BOT_DIR,
    limit_per_intent: int | None = None,
    classifier_params: dict[str, object] | None = None,
    extra_examples: dict[str, list[str]] | None = None,
    examples: dict[str, list[str]] | None = None,
) -> BuildResult:
    """Validate everything first, then write ``out_dir`` atomically (temporary folder, rename).

    ``extra_examples`` are staff-approved examples from the admin database (the retraining
    loop); they go to ``data/nlu/approved.yml``, and where one repeats a seed text under
    another intent, the staff's label wins. ``examples`` replaces the seed examples read from
    ``data_dir`` (the retraining loop passes its snapshot).
    """
    data_dir = (data_dir or get_settings().data_dir).resolve()
    _check_thresholds(bot_dir / "config.yml")
    dropped = 0
    if examples is None:
        examples, dropped = collect_examples(data_dir, limit_per_intent)
    examples = {intent: list(texts) for intent, texts in examples.items()}
    approved = _merge_approved(examples, extra_examples or {})
    banking = datasets.banking77_intents(data_dir)
    needed = {**_rule_intents(bot_dir / "data"), **_domain_intents(bot_dir / "domain")}
    needed.pop("nlu_fallback", None)  # predicted by FallbackClassifier, never trained
    bot_nlu = _bot_nlu_intents(bot_dir / "data")
    for intent, path in needed.items():
        if intent not in examples and intent not in bot_nlu:
            raise DataError(f"{path}: intent {intent!r} has no examples in {data_dir}")
    held_out = {
        same_text_key(e.text): e.text for e in datasets.load_banking77("test", data_dir)
    }
    try:
        answers = _check_answers(data_dir, set(examples), held_out)
    except AnswerFileError as error:
        raise DataError(str(error)) from error

    files: dict[str, str] = {
        "config.yml": render_config(bot_dir / "config.yml", classifier_params),
        "domain/intents.yml": _yaml_text({"version": "3.1", "intents": sorted(examples)}),
        "data/nlu/seed.yml": _nlu_yaml(examples),
        **({"data/nlu/approved.yml": _nlu_yaml(approved)} if approved else {}),
        # Banking intents with a flow of their own (bot/data/rules) are not plain FAQs.
        "data/rules/faq.yml": _faq_rules([i for i in banking
                                          if i not in _rule_intents(bot_dir / "data")]),
    }
    for path in sorted((bot_dir / "domain").glob("*.yml")):
        files[f"domain/{path.name}"] = path.read_text(encoding="utf-8")
    for path in sorted((bot_dir / "data").rglob("*.yml")):
        files[f"data/{path.relative_to(bot_dir / 'data').as_posix()}"] = path.read_text(
            encoding="utf-8"
        )
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    result = BuildResult(
        out_dir=out_dir,
        intents=len(examples),
        examples=sum(len(v) for v in examples.values())
        + sum(len(v) for v in approved.values()),
        answers=answers,
        dropped_conflicts=dropped,
        data_hash=digest.hexdigest(),
    )
    manifest = {k: v for k, v in result.__dict__.items() if k != "out_dir"}
    files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True) + "\n"

    with staged_dir(out_dir) as staging:
        for name, text in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return result
