"""Label-preserving text augmentation that needs no download.

Each copy of a training example gets a few small edits that customers make themselves:
keyboard typos, a dropped or swapped word, case and punctuation changes, and synonyms from
``synonyms.yaml``. Configured per training run through ``TrainParams.augmentation``, e.g.
``{"copies": 2}`` (defaults below). ``bench/intent.py`` measures whether it helps.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import yaml

DEFAULTS: dict[str, float] = {
    "copies": 2,  # augmented copies per example (originals are always kept)
    "typo": 0.05,  # per word
    "dropout": 0.2,  # per sentence: drop one word (sentences of 4+ words)
    "swap": 0.2,  # per sentence: swap two adjacent words
    "synonym": 0.5,  # per sentence: replace one phrase from synonyms.yaml
    "case": 0.3,  # per sentence: lower-case, or capitalise the first letter
    "punctuation": 0.3,  # per sentence: drop or change the final punctuation
}
_KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
_WORD = re.compile(r"\S+")


@lru_cache(maxsize=1)
def _neighbours() -> dict[str, str]:
    positions = {ch: (r, c) for r, row in enumerate(_KEYBOARD) for c, ch in enumerate(row)}
    result = {}
    for ch, (r, c) in positions.items():
        near = [o for o, (r2, c2) in positions.items()
                if o != ch and abs(r2 - r) <= 1 and abs(c2 - c) <= 1]
        result[ch] = "".join(near)
    return result


@lru_cache(maxsize=1)
def synonym_groups() -> list[list[str]]:
    path = Path(__file__).with_name("synonyms.yaml")
    groups = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [[str(p).lower() for p in group] for group in groups if len(group) > 1]


def typo(word: str, rng: random.Random) -> str:
    """One keyboard slip: a neighbouring key, a doubled, dropped or swapped letter."""
    letters = [i for i, ch in enumerate(word) if ch.lower() in _neighbours()]
    if len(word) < 3 or not letters:
        return word
    i = rng.choice(letters)
    kind = rng.choice(("neighbour", "double", "drop", "swap"))
    if kind == "neighbour":
        return word[:i] + rng.choice(_neighbours()[word[i].lower()]) + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word


def _replace_synonym(text: str, rng: random.Random) -> str:
    lowered = text.lower()
    options = []
    for group in synonym_groups():
        for phrase in group:
            for match in re.finditer(rf"\b{re.escape(phrase)}\b", lowered):
                options.append((match.start(), match.end(), [p for p in group if p != phrase]))
    if not options:
        return text
    start, end, alternatives = rng.choice(options)
    return text[:start] + rng.choice(alternatives) + text[end:]


def augment_text(text: str, rng: random.Random, config: dict[str, float] | None = None) -> str:
    settings = {**DEFAULTS, **(config or {})}
    if rng.random() < settings["synonym"]:
        text = _replace_synonym(text, rng)
    words = _WORD.findall(text)
    if len(words) >= 4 and rng.random() < settings["dropout"]:
        del words[rng.randrange(len(words))]
    if len(words) >= 3 and rng.random() < settings["swap"]:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    words = [typo(w, rng) if rng.random() < settings["typo"] else w for w in words]
    text = " ".join(words)
    if rng.random() < settings["case"]:
        text = text.lower() if rng.random() < 0.5 else text[:1].upper() + text[1:]
    if rng.random() < settings["punctuation"]:
        stripped = text.rstrip("?!. ")
        text = stripped + rng.choice(("", "?", ".", "!", " ?"))
    return text or "?"


def augment_examples(texts: Sequence[str], labels: Sequence[str],
                     config: dict[str, float] | None = None,
                     seed: int = 0) -> tuple[list[str], list[str]]:
    """Originals plus ``copies`` distinct augmented variants of each, same labels."""
    settings = {**DEFAULTS, **(config or {})}
    rng = random.Random(seed)
    out_texts, out_labels = list(texts), list(labels)
    seen = {t.lower() for t in texts}
    for text, label in zip(texts, labels, strict=True):
        for _ in range(int(settings["copies"])):
            for _attempt in range(3):
                variant = augment_text(text, rng, settings)
                if variant.lower() not in seen:
                    seen.add(variant.lower())
                    out_texts.append(variant)
                    out_labels.append(label)
                    break
    return out_texts, out_labels
