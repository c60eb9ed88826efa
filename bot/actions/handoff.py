"""``action_handoff``: pass the customer to a person.

It tells the customer, then pauses the conversation (``ConversationPaused``): Rasa stops
replying, and the admin API's hand-off queue (built from those events) shows it to staff, whose
replies reach the customer's widget until they resume the bot.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_handoff")
        return [ConversationPaused()]
