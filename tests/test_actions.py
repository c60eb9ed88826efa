"""Custom actions' decisions that need no running bot."""

from __future__ import annotations

from bot.actions.answers import previous_turn_failed


def _user(text: str) -> dict:
    return {"event": "user", "text": text}


def _bot(action: str) -> dict:
    return {"event": "bot", "text": "...", "metadata": {"utter_action": action}}


def test_previous_turn_failed_looks_only_at_the_turn_before() -> None:
    assert previous_turn_failed([_user("a")]) is False
    assert previous_turn_failed([_user("a"), _bot("utter_no_answer"), _user("b")]) is True
    assert previous_turn_failed([_user("a"), _bot("utter_greet"), _user("b")]) is False
    # A failure two turns ago, then an answer: not "in a row".
    assert previous_turn_failed([_user("a"), _bot("utter_no_answer"), _user("b"),
                                 _bot("utter_greet"), _user("c")]) is False
    assert previous_turn_failed([_bot("utter_no_answer"), _user("b")]) is False
