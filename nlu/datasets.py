"""Loading the seed training data: BANKING77 and the conversational intents.

Everything that trains or evaluates a model reads examples through here, so the intent-name
mapping and the train/test split are applied the same way everywhere.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from common.config import get_settings
from common.text import is_intent_name


class DataError(ValueError):
    """Malformed seed data; the message names the file and the entry."""


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


def normalise_intent(category: str) -> str:
    """Map a dataset category to a Rasa intent name (``Refund_not_showing_up`` -> lowercase)."""
    name = re.sub(r"[^a-z0-9_]", "", category.strip().lower())
    if not is_intent_name(name):  # two BANKING77 categories are not identifiers
        raise DataError(f"cannot turn category {category!r} into an intent name")
    return name


def banking77_dir(data_dir: Path | None = None) -> Path:
    return (data_dir or get_settings().data_dir) / "banking77"


def load_banking77(split: str, data_dir: Path | None = None) -> list[Example]:
    """Read ``train`` or ``test``; ``test`` is the held-out set that no model may train on."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    return load_examples_csv(banking77_dir(data_dir) / f"{split}.csv")


def load_examples_csv(path: Path) -> list[Example]:
    """A labelled CSV with ``text,category`` columns (BANKING77's format, and evaluation data)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    examples = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or {"text", "category"} - set(reader.fieldnames):
            raise DataError(f"{path}: expected columns text,category, got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            text = (row["text"] or "").strip()
            if not text:
                raise DataError(f"{path}:{line}: empty text")
            examples.append(Example(text, normalise_intent(row["category"] or "")))
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples


def banking77_intents(data_dir: Path | None = None) -> list[str]:
    """The 77 banking intent names, normalised, in the dataset's order."""
    import json

    path = banking77_dir(data_dir) / "categories.json"
    return [normalise_intent(c) for c in json.loads(path.read_text(encoding="utf-8"))]


def load_conversational(data_dir: Path | None = None) -> dict[str, list[str]]:
    """Conversational intents from ``data/conversational/*.yaml`` (intent -> examples)."""
    folder = (data_dir or get_settings().data_dir) / "conversational"
    intents: dict[str, list[str]] = {}
    origin: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise DataError(f"{path}: not valid YAML: {error}") from error
        if not isinstance(content, dict):
            raise DataError(f"{path}: expected a mapping of intent name to examples")
        for intent, examples in content.items():
            where = f"{path}: intent {intent!r}"
            if not isinstance(intent, str) or not is_intent_name(intent):
                raise DataError(f"{where}: not a valid intent name (lowercase, digits, _)")
            if intent in intents:
                raise DataError(f"{where}: already defined in {origin[intent]}")
            if not examples:
                raise DataError(f"{where}: has no examples")
            if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
                raise DataError(f"{where}: examples must be a list of strings")
            cleaned = [e.strip() for e in examples if e.strip()]
            if not cleaned:
                raise DataError(f"{where}: has no examples")
            intents[intent] = cleaned
            origin[intent] = path
    return intents


def stratified_split(examples: list[Example], share: float,
                     seed: int = 0) -> tuple[list[Example], list[Example]]:
    """``share`` of each intent's examples (at least one) held out, the rest kept: a validation
    split in which every intent is represented, the same for the same seed."""
    by_intent: dict[str, list[Example]] = {}
    for example in examples:
        by_intent.setdefault(example.intent, []).append(example)
    rng = random.Random(seed)
    kept: list[Example] = []
    held: list[Example] = []
    for intent in sorted(by_intent):
        group = by_intent[intent][:]
        rng.shuffle(group)
        cut = max(1, int(len(group) * share))
        held += group[:cut]
        kept += group[cut:]
    return kept, held
