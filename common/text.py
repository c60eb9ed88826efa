"""What counts as "the same text", and what a valid intent name is, defined once.

The test-copy check (a held-out question copied into training data is refused), the retraining
held-out filter (no model is judged on a text it was trained on) and the retriever's question
dedup must agree: if one of them ignored punctuation and another did not, a question could be
both "a copy" and "new" at once.
"""

from __future__ import annotations

import re

# A Rasa intent name as this project writes them (dataset categories are lowered to it).
INTENT_PATTERN = r"^[a-z][a-z0-9_]*$"
_INTENT_NAME = re.compile(INTENT_PATTERN)
_PUNCT = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


def is_intent_name(name: str) -> bool:
    return bool(_INTENT_NAME.match(name))


def same_text_key(text: str) -> str:
    """Case-, punctuation- and spacing-insensitive form: two texts with the same key are the
    same question ("What is my PIN?" and "what is my  pin")."""
    return _SPACES.sub(" ", _PUNCT.sub(" ", text.lower())).strip()
