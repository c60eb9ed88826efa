"""Card numbers and security codes are masked wherever customer text comes in."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from nlu.privacy import mask_sensitive


@pytest.mark.parametrize(("text", "masked"), [
    ("my card 4111 1111 1111 1111 was stolen", "my card **** **** **** 1111 was stolen"),
    ("4111-1111-1111-1111", "**** **** **** 1111"),
    ("number:5500000000000004, cvv 999", "number:**** **** **** 0004, cvv ***"),
    ("378282246310005 is my amex", "**** **** **** 0005 is my amex"),  # 15 digits, Luhn
    ("CVC: 1234", "CVC: ****"),
    ("my security code is 321", "my security code is ***"),
    ("card ending 1234", "card ending 1234"),  # the last four alone are fine to keep
    ("transfer ref 1234567890123", "transfer ref 1234567890123"),  # not Luhn, not 16 digits
    ("I sent 250 EUR on 2026-11-02", "I sent 250 EUR on 2026-11-02"),
    ("💳 4111111111111111💳", "💳 **** **** **** 1111💳"),
])
def test_mask_sensitive(text: str, masked: str) -> None:
    assert mask_sensitive(text) == masked
    assert mask_sensitive(masked) == masked  # idempotent


def test_feedback_and_training_examples_are_masked(client: TestClient, auth: dict) -> None:
    feedback = client.post("/api/v1/feedback", json={
        "session_id": "p-1", "message_id": "m-1", "rating": "down",
        "comment": "you charged 4111 1111 1111 1111 twice, cvv 123"})
    assert feedback.json()["comment"] == "you charged **** **** **** 1111 twice, cvv ***"
    example = client.post("/api/v1/training-examples", headers=auth["staff"], json={
        "text": "block 5500 0000 0000 0004 now", "intent": "lost_or_stolen_card"})
    assert example.json()["text"] == "block **** **** **** 0004 now"
    export = client.get("/api/v1/training-examples", headers=auth["staff"]).text
    assert "5500" not in export


def test_tokens_in_log_lines_are_redacted_whoever_logs_them(caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    import logging

    from nlu.privacy import REDACTED, redact_secrets_in_logs, redact_token

    assert redact_token("GET /status?token=s3cr3t-Value&x=1 200") == (
        f"GET /status?token={REDACTED}&x=1 200")
    assert redact_token("no secrets here") == "no secrets here"
    redact_secrets_in_logs()
    redact_secrets_in_logs()  # installing twice wraps once
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info('"%s %s" 200', "POST",
                                               "/conversations/x/tracker/events?token=abc123")
        logging.getLogger("httpx").warning("HTTP Request: GET http://h/?auth_token=zz9 failed")
    text = caplog.text
    assert "abc123" not in text and "zz9" not in text and text.count(REDACTED) == 2
