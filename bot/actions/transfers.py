"""The missing transfer flow: ``missing_transfer_form`` asks for the transfer's reference, or,
when the customer does not have it, its amount and date; ``action_transfer_status`` then reports
its status from the demo transfer store. "stop" or another topic ends it at any step
(``bot/actions/flows.py``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.flows import FlowValidation, end_of_flow, flow_reset

FORM = "missing_transfer_form"
SLOTS = ["transfer_reference", "transfer_amount", "transfer_date"]
NO_REFERENCE = "none"
REFERENCE = re.compile(r"(?i)\bTR[- ]?(\d{6})\b")
NO = re.compile(r"(?i)\b(no|nope|don'?t|do not|haven'?t|not sure|lost it)\b")
AMOUNT = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?![\d])")
DAYS_AGO = re.compile(r"(?i)\b(\d{1,2})\s+days?\s+ago\b")


@dataclass(frozen=True)
class Transfer:
    reference: str
    amount: float
    sent_on: date
    status: str


def demo_transfers(today: date | None = None) -> list[Transfer]:
    """The demo bank's recent outgoing transfers, dated relative to today."""
    today = today or date.today()
    return [
        Transfer("TR-482913", 250.00, today - timedelta(days=1), "completed"),
        Transfer("TR-775120", 99.90, today - timedelta(days=3), "pending"),
        Transfer("TR-310558", 1200.00, today - timedelta(days=6), "returned"),
    ]


def parse_amount(text: str) -> float | None:
    match = AMOUNT.search(text)
    if not match:
        return None
    value = float(match.group(1).replace(",", "") + "." + (match.group(2) or "0"))
    return value if 0 < value < 1_000_000_000 else None


def parse_date(text: str, today: date | None = None) -> date | None:
    """ISO (2026-11-02), day first (02/11/2026, 02.11.2026), today, yesterday, N days ago."""
    today = today or date.today()
    lowered = text.lower()
    found: date | None = None
    if "today" in lowered:
        found = today
    elif "yesterday" in lowered:
        found = today - timedelta(days=1)
    elif match := DAYS_AGO.search(lowered):
        found = today - timedelta(days=int(match.group(1)))
    elif match := re.search(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", lowered):
        found = _date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    elif match := re.search(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})\b", lowered):
        found = _date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
    return found if found is not None and found <= today else None


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def find_transfer(reference: str | None, amount: float | None, sent_on: str | None,
                  transfers: list[Transfer]) -> Transfer | None:
    for transfer in transfers:
        if reference and reference != NO_REFERENCE:
            if transfer.reference == reference:
                return transfer
        elif amount is not None and sent_on and abs(transfer.amount - amount) < 0.005 \
                and transfer.sent_on.isoformat() == sent_on:
            return transfer
    return None


class ValidateMissingTransferForm(FlowValidation):
    flow_intents = FlowValidation.flow_intents | {"transfer_not_received_by_recipient"}

    def name(self) -> str:
        return f"validate_{FORM}"

    def expected_answer(self, tracker: Tracker) -> bool:
        text = (tracker.latest_message or {}).get("text") or ""
        asked = tracker.get_slot("requested_slot")
        return (asked == "transfer_reference" and bool(REFERENCE.search(text) or NO.search(text))
                or asked == "transfer_amount" and parse_amount(text) is not None
                or asked == "transfer_date" and parse_date(text) is not None)

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        if tracker.get_slot("transfer_reference") == NO_REFERENCE:
            return SLOTS
        return ["transfer_reference"]

    def validate_transfer_reference(self, value: Any, dispatcher: CollectingDispatcher,
                                    tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = str(value or "")
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        if match := REFERENCE.search(text):
            return {"transfer_reference": f"TR-{match.group(1)}"}
        if intent == "deny" or NO.search(text):
            return {"transfer_reference": NO_REFERENCE}
        dispatcher.utter_message(response="utter_transfer_reference_invalid")
        return {"transfer_reference": None}

    def validate_transfer_amount(self, value: Any, dispatcher: CollectingDispatcher,
                                 tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        amount = parse_amount(str(value or ""))
        if amount is None:
            dispatcher.utter_message(response="utter_transfer_amount_invalid")
        return {"transfer_amount": amount}

    def validate_transfer_date(self, value: Any, dispatcher: CollectingDispatcher,
                               tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        found = parse_date(str(value or ""))
        if found is None:
            dispatcher.utter_message(response="utter_transfer_date_invalid")
            return {"transfer_date": None}
        return {"transfer_date": found.isoformat()}


STATUS_TEXT = {
    "completed": "The transfer {reference} of {amount:.2f} sent on {day} is **completed**: it "
                 "left us and reached the recipient's bank. Banks can take up to one working "
                 "day to show it, so ask the recipient to check again tomorrow.",
    "pending": "The transfer {reference} of {amount:.2f} sent on {day} is **pending**: it is "
               "held for a routine security check and will be released within 24 hours. "
               "Nothing more is needed from you.",
    "returned": "The transfer {reference} of {amount:.2f} sent on {day} was **returned** by the "
                "recipient's bank (the account details did not match). The money is back in "
                "your account; check the details and send it again.",
}


class ActionTransferStatus(Action):
    def name(self) -> str:
        return "action_transfer_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        ended = end_of_flow(dispatcher, tracker, SLOTS)
        if ended is not None:
            return ended
        transfer = find_transfer(tracker.get_slot("transfer_reference"),
                                 tracker.get_slot("transfer_amount"),
                                 tracker.get_slot("transfer_date"), demo_transfers())
        if transfer is None:
            dispatcher.utter_message(
                text="I can't find a transfer matching that. Would you like me to connect you "
                     "to our support team?",
                buttons=[{"title": "Yes, connect me", "payload": "/request_human"},
                         {"title": "No, thanks", "payload": "/deny"}])
        else:
            dispatcher.utter_message(text=STATUS_TEXT[transfer.status].format(
                reference=transfer.reference, amount=transfer.amount,
                day=transfer.sent_on.isoformat()))
        return flow_reset(SLOTS)
