"""The lost or stolen card flow: ``lost_card_form`` asks for the card's last four digits and a
confirmation, then ``action_freeze_card`` freezes it in the demo card store. "stop" or another
topic ends it at any step (``bot/actions/flows.py``)."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.flows import FlowValidation, end_of_flow, flow_reset

FORM = "lost_card_form"
SLOTS = ["card_last4", "freeze_confirmed"]
LAST4 = re.compile(r"(?<!\d)(\d{4})(?!\d)")
# The demo bank's card store: which cards (by last four digits) are frozen.
FROZEN_CARDS: set[str] = set()


class ValidateLostCardForm(FlowValidation):
    flow_intents = FlowValidation.flow_intents | {"lost_or_stolen_card"}

    def name(self) -> str:
        return f"validate_{FORM}"

    def expected_answer(self, tracker: Tracker) -> bool:
        text = (tracker.latest_message or {}).get("text") or ""
        return tracker.get_slot("requested_slot") == "card_last4" and bool(LAST4.search(text))

    def validate_card_last4(self, value: Any, dispatcher: CollectingDispatcher,
                            tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        found = LAST4.findall(str(value or ""))
        if found:
            return {"card_last4": found[-1]}  # a (masked) card number ends with them
        dispatcher.utter_message(response="utter_card_last4_invalid")
        return {"card_last4": None}


class ActionFreezeCard(Action):
    def name(self) -> str:
        return "action_freeze_card"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        ended = end_of_flow(dispatcher, tracker, SLOTS)
        if ended is not None:
            return ended
        reset = flow_reset(SLOTS)
        last4 = tracker.get_slot("card_last4")
        if tracker.get_slot("freeze_confirmed") is not True:
            dispatcher.utter_message(response="utter_flow_stopped")
            return reset
        FROZEN_CARDS.add(last4)
        dispatcher.utter_message(response="utter_card_frozen", card_last4=last4)
        return reset
