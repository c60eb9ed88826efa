"""``action_answer``: reply to an FAQ-like turn (or an unsure one) with a curated answer.

The action asks the FAISS retriever (``bot/actions/retriever.py``), passing the classifier's
intent ranking, so any published answer is reachable, including one published a second ago
that no model was trained on. The retriever's decision picks the reply (``retrieval.reply``, shared
with the staff console's "Try it"): the answer itself, a choice between the closest two or three
answers as buttons, or an offer of a human (and, when the previous message had no answer
either, the hand-off itself).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.retriever import count_question, ready_retriever
from nlu import handover
from retrieval.decision import ANSWER, CLARIFY, CLARIFY_OPTIONS
from retrieval.reply import NO_ANSWER_RESPONSE as NO_ANSWER
from retrieval.reply import reply_for
from retrieval.retriever import SearchResult

logger = logging.getLogger(__name__)


def _search(message: dict[str, Any]) -> SearchResult | None:
    retriever = ready_retriever()
    if retriever is None:
        logger.warning("no answer retriever is ready: replying with the fallback")
        return None
    encoder = retriever.encoder
    # The classifier's vector of this text, when it is this encoder's (nlu/handover.py).
    vector = handover.unpack(message.get(handover.PARSE_KEY), encoder.model_id, encoder.dim)
    count_question(handed_over=vector is not None)
    return retriever.search(message.get("text") or "", k=CLARIFY_OPTIONS,
                            intent_ranking=message.get("intent_ranking"), vector=vector)


def previous_turn_failed(events: list[dict[str, Any]]) -> bool:
    """Whether the bot had no answer for the customer's previous message too."""
    users, failed = 0, False
    for event in reversed(events):
        if event.get("event") == "user":
            users += 1
            if users == 2:
                return failed  # the no-answer replied to this earlier message
        elif users == 1 and event.get("event") == "bot" and \
                (event.get("metadata") or {}).get("utter_action") == NO_ANSWER:
            failed = True
    return False


def _fall_back(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict[str, Any]]:
    """No answer: offer a person; the second time in a row, hand over without asking."""
    if previous_turn_failed(tracker.events):
        dispatcher.utter_message(response="utter_handoff_after_failures")
        return [ConversationPaused()]
    dispatcher.utter_message(response=NO_ANSWER)
    return []


def _payload(message: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """What our widget needs beside the text: which answer, why, and which customer message
    it answers (for feedback). Wrapped in ``data`` because Rasa's socket.io channel passes a
    custom payload's keys to ``emit`` as arguments; ``data`` is the one that becomes the
    event's body."""
    intent = message.get("intent") or {}
    return {"data": {"intent": intent.get("name"), "confidence": intent.get("confidence"),
                     "message_id": message.get("message_id"), **fields}}


class ActionAnswer(Action):
    def name(self) -> str:
        return "action_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        message = tracker.latest_message or {}
        result = await asyncio.to_thread(_search, message)
        retriever = ready_retriever(0)
        reply = reply_for(result, retriever.answer if retriever else lambda _: None)
        if reply.decision == CLARIFY:
            dispatcher.utter_message(
                text=reply.text, buttons=reply.buttons,
                json_message=_payload(message, decision=CLARIFY, answer_ids=reply.answer_ids),
            )
            return []
        if reply.decision != ANSWER:
            return _fall_back(dispatcher, tracker)
        dispatcher.utter_message(
            text=reply.text,
            json_message=_payload(message, decision=ANSWER, answer_id=reply.answer_id,
                                  score=reply.score),
        )
        return []
