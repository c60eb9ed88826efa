"""Masking what customers must never have stored: card numbers and card security codes.

Applied where customer text enters the system (Rasa's input channels, the feedback intake,
training examples), so the tracker store, feedback and training exports only ever see the
masked text. A card number keeps its last four digits: staff (and the lost-card flow) can
still tell which card is meant.

Secrets get the same care in logs: ``redact_secrets_in_logs`` blanks any ``token=...`` that a
request line or an error message would otherwise write into a log file.
"""

from __future__ import annotations

import logging
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


_TOKEN_IN_URL = re.compile(r"(?i)\b((?:auth_)?token=)[^&\s\"']+")
REDACTED = "[redacted]"


def redact_token(text: str) -> str:
    return _TOKEN_IN_URL.sub(lambda m: m.group(1) + REDACTED, text)


def redact_secrets_in_logs() -> None:
    """Every log record this process makes has ``token=...`` redacted in its message and
    arguments, whichever library logs it (uvicorn's access log, httpx's and aiohttp's request
    lines and errors) and however logging is set up later: the record factory is global,
    handlers and formatters are not."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacts_tokens", False):
        return

    def redacting(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if isinstance(record.msg, str):
            record.msg = redact_token(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_token(a) if isinstance(a, str) else a
                                for a in record.args)
        return record

    redacting.redacts_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting)
