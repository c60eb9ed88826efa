"""Masking what customers must never have stored: card numbers and card security codes.

Applied where customer text enters the system (Rasa's input channels, the feedback intake,
training examples), so the tracker store, feedback and training exports only ever see the
masked text. A card number keeps its last four digits: staff (and the lost-card flow) can
still tell which card is meant.
"""

from __future__ import annotations

import re

# 13 to 19 digits, optionally grouped by single spaces or dashes (as people type card numbers).
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# A 3 or 4 digit code right after a word that names it.
_CODE = re.compile(
    r"(?i)\b(cvv2?|cvc2?|csc|cid|security code|card code|verification code)"
    r"(\s*(?:is|:|=|-)?\s*)(\d{3,4})\b"
)
MASK = "*"


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    if not _luhn_ok(digits) and len(digits) != 16:
        return text  # a long reference or phone-like number, not a card
    return f"{MASK * 4} {MASK * 4} {MASK * 4} {digits[-4:]}"


def mask_sensitive(text: str) -> str:
    """The text with card numbers reduced to their last four digits and security codes
    hidden."""
    masked = _CARD.sub(_mask_card, text)
    return _CODE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK * len(m.group(3))}", masked)
