"""What every multi-turn flow (a Rasa form) shares: the customer can stop it or change topic
at any step.

A flow's validation action (``FlowValidation``) ends the form when the customer's message says
"stop" or is confidently about something else; the form then ends normally and the flow's
final action (``end_of_flow``) says so, or sets ``flow_exit=switch`` for the flow's rule
that answers the new question with ``action_answer``. Every path is a rule, so Rasa's
conversation tests cover them.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

# Not "cancel": "cancel my card" is what customers with a lost card say.
STOP = re.compile(r"(?i)\b(stop|never\s*mind|forget it|quit)\b")
SWITCH_CONFIDENCE = 0.5
EXIT_SLOT = "flow_exit"


class FlowValidation(FormValidationAction, ABC):
    """Base of the flows' validation actions; ``flow_intents`` belong to the flow itself."""

    flow_intents: frozenset[str] = frozenset({"inform", "affirm", "deny", "nlu_fallback",
                                              "out_of_scope"})

    @abstractmethod
    def name(self) -> str:
        """Abstract here, so the action server registers only the concrete flows."""

    def expected_answer(self, tracker: Tracker) -> bool:
        """Whether the message is plainly an answer to the question asked (then it is never
        a change of topic, whatever the classifier made of it)."""
        return False

    def exit_reason(self, tracker: Tracker) -> str | None:
        message = tracker.latest_message or {}
        if STOP.search(message.get("text") or ""):
            return "stop"
        if self.expected_answer(tracker):
            return None
        intent = message.get("intent") or {}
        confidence = intent.get("confidence") or 0.0
        if intent.get("name") not in self.flow_intents and confidence >= SWITCH_CONFIDENCE:
            return "switch"
        return None

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[dict[str, Any]]:
        """Before any slot: "stop" or another topic ends the form (a validation action ends it
        by setting the requested slot to None). Never on the message that started it."""
        if not tracker.get_slot("requested_slot"):
            # Starting: forget how an earlier flow ended (a switch leaves it set).
            stale = [SlotSet(EXIT_SLOT, None)] if tracker.get_slot(EXIT_SLOT) else []
            return stale + await super().run(dispatcher, tracker, domain)
        reason = self.exit_reason(tracker)
        if reason:
            return [SlotSet(EXIT_SLOT, reason), SlotSet("requested_slot", None)]
        return await super().run(dispatcher, tracker, domain)


def end_of_flow(dispatcher: CollectingDispatcher, tracker: Tracker,
                slots: list[str]) -> list[dict[str, Any]] | None:
    """The events that close a stopped or switched flow (clearing its ``slots``), or None when
    the flow ran to its end and the caller should act on it.

    After a switch, ``flow_exit`` stays ``switch``: the flow's rule then runs ``action_answer``
    on the customer's new question, and the next flow to start clears it."""
    reason = tracker.get_slot(EXIT_SLOT)
    if reason == "switch":
        # Set again (not only left): the rules then see the flow's last action set it.
        return [*flow_reset(slots)[:-1], SlotSet(EXIT_SLOT, "switch")]
    if reason == "stop":
        dispatcher.utter_message(response="utter_flow_stopped")
        return flow_reset(slots)
    return None


def flow_reset(slots: list[str]) -> list[dict[str, Any]]:
    """Clear a finished flow's slots; ``flow_exit`` last, always set, as its rules expect."""
    return [SlotSet(slot, None) for slot in slots] + [SlotSet(EXIT_SLOT, None)]
