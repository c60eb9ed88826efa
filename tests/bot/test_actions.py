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


def test_transfer_amounts_and_dates_are_parsed_as_people_type_them() -> None:
    from datetime import date

    from bot.actions.transfers import parse_amount, parse_date

    assert parse_amount("I sent 250 euros") == 250.0
    assert parse_amount("£1,200.50") == 1200.5
    assert parse_amount("99.9") == 99.9
    assert parse_amount("no idea") is None and parse_amount("0") is None
    today = date(2026, 11, 30)
    assert parse_date("yesterday", today) == date(2026, 11, 29)
    assert parse_date("3 days ago", today) == date(2026, 11, 27)
    assert parse_date("on 2026-11-02", today) == date(2026, 11, 2)
    assert parse_date("02/11/2026", today) == date(2026, 11, 2)  # day first
    assert parse_date("2026-12-25", today) is None  # in the future
    assert parse_date("31/02/2026", today) is None and parse_date("soon", today) is None


def test_transfers_are_found_by_reference_or_by_amount_and_date() -> None:
    from datetime import date

    from bot.actions.transfers import NO_REFERENCE, demo_transfers, find_transfer

    store = demo_transfers(date(2026, 11, 30))
    assert find_transfer("TR-775120", None, None, store).status == "pending"
    assert find_transfer("TR-000000", 250.0, "2026-11-29", store) is None  # a wrong reference
    assert find_transfer(NO_REFERENCE, 250.0, "2026-11-29", store).reference == "TR-482913"
    assert find_transfer(NO_REFERENCE, 250.0, "2026-11-28", store) is None
