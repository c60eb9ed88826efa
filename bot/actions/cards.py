"""The lost or stolen card flow: ``lost_card_form`` asks for the card's last four digits and a
confirmation, then ``action_freeze_card`` freezes it in the demo card store.

The customer can stop at any point ("stop", "never mind", "forget it") or switch topic (a
confident other intent): the form's validation then ends it, and ``action_freeze_card`` says
so or hands the message to ``action_answer``. Both exits go through the form's normal end, so
the dialogue needs only the happy-path rules.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

FORM = "lost_card_form"
LAST4 = re.compile(r"(?<!\d)(\d{4})(?!\d)")
# Not "cancel": "cancel my card" is what customers with a lost card say.
STOP = re.compile(r"(?i)\b(stop|never\s*mind|forget it|quit)\b")
# Intents that belong to this flow; any other confident intent is a change of topic.
FLOW_INTENTS = {"lost_or_stolen_card", "affirm", "deny", "nlu_fallback", "out_of_scope"}
SWITCH_CONFIDENCE = 0.5
# The demo bank's card store: which cards (by last four digits) are frozen.
FROZEN_CARDS: set[str] = set()


def exit_reason(tracker: Tracker) -> str | None:
    """``stop``, ``switch`` or None, from the customer's latest message."""
    message = tracker.latest_message or {}
    text = message.get("text") or ""
    if STOP.search(text):
        return "stop"
    if tracker.get_slot("requested_slot") == "card_last4" and LAST4.search(text):
        return None  # the digits asked for, whatever the classifier made of the sentence
    intent = message.get("intent") or {}
    if intent.get("name") not in FLOW_INTENTS and (intent.get("confidence") or 0) >= \
            SWITCH_CONFIDENCE:
        return "switch"
    return None


class ValidateLostCardForm(FormValidationAction):
    def name(self) -> str:
        return f"validate_{FORM}"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        return [] if tracker.get_slot("flow_exit") else domain_slots

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        """Before any slot: "stop" or another topic ends the form (setting the requested slot
        to None is how a validation action ends it). Not on the message that started it."""
        reason = exit_reason(tracker) if tracker.get_slot("requested_slot") else None
        if reason:
            return [SlotSet("flow_exit", reason), SlotSet("requested_slot", None)]
        return await super().run(dispatcher, tracker, domain)

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
        last4, exit_ = tracker.get_slot("card_last4"), tracker.get_slot("flow_exit")
        reset = [SlotSet("card_last4", None), SlotSet("freeze_confirmed", None),
                 SlotSet("flow_exit", None)]
        if exit_ == "switch":
            return [*reset, FollowupAction("action_answer")]
        if exit_ == "stop" or tracker.get_slot("freeze_confirmed") is not True:
            dispatcher.utter_message(response="utter_flow_stopped")
            return reset
        FROZEN_CARDS.add(last4)
        dispatcher.utter_message(response="utter_card_frozen", card_last4=last4)
        return reset
