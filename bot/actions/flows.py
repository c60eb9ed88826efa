"""What every multi-turn flow (a Rasa form) shares: the customer can stop it or change topic
at any step.

A flow's validation action (``FlowValidation``) ends the form when the customer's message says
"stop" or is confidently about something else; the form then ends normally and the flow's
final action (``end_of_flow``) says so, or hands the message to ``action_answer``. So the
dialogue needs only each flow's two happy-path rules.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
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
        reason = self.exit_reason(tracker) if tracker.get_slot("requested_slot") else None
        if reason:
            return [SlotSet(EXIT_SLOT, reason), SlotSet("requested_slot", None)]
        return await super().run(dispatcher, tracker, domain)


def end_of_flow(dispatcher: CollectingDispatcher, tracker: Tracker,
                slots: list[str]) -> list[dict[str, Any]] | None:
    """The events that close a stopped or switched flow (clearing its ``slots``), or None when
    the flow ran to its end and the caller should act on it."""
    reset = [SlotSet(slot, None) for slot in [*slots, EXIT_SLOT]]
    reason = tracker.get_slot(EXIT_SLOT)
    if reason == "switch":
        return [*reset, FollowupAction("action_answer")]
    if reason == "stop":
        dispatcher.utter_message(response="utter_flow_stopped")
        return reset
    return None
