"""``action_answer``: reply to an FAQ-like turn (or an unsure one) with a curated answer.

The action asks the FAISS retriever (``bot/actions/retriever.py``), passing the classifier's
intent ranking, so any published answer is reachable, including one published a second ago
that no model was trained on. The retriever's decision picks the reply: the answer itself, a
choice between the closest two or three answers as buttons, or an offer of a human.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.retriever import ready_retriever
from retrieval.decision import ANSWER, CLARIFY, CLARIFY_OPTIONS
from retrieval.retriever import SearchResult

logger = logging.getLogger(__name__)


def _search(text: str, ranking: list[dict[str, Any]] | None) -> SearchResult | None:
    retriever = ready_retriever()
    if retriever is None:
        logger.warning("no answer retriever is ready: replying with the fallback")
        return None
    return retriever.search(text, k=CLARIFY_OPTIONS, intent_ranking=ranking)


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
        text = message.get("text") or ""
        result = await asyncio.to_thread(_search, text, message.get("intent_ranking"))
        if result is None or result.top is None or result.decision not in {ANSWER, CLARIFY}:
            dispatcher.utter_message(response="utter_no_answer")
            return []
        if result.decision == CLARIFY:
            dispatcher.utter_message(
                text="I'm not sure which of these you mean. Please pick one:",
                buttons=[{"title": h.title, "payload": h.title} for h in result.hits],
                json_message=_payload(message, decision=CLARIFY,
                                      answer_ids=[h.answer_id for h in result.hits]),
            )
            return []
        top = result.top
        retriever = ready_retriever(0)
        answer = retriever.answer(top.answer_id) if retriever else None
        if answer is None:  # unpublished between the search and now
            dispatcher.utter_message(response="utter_no_answer")
            return []
        dispatcher.utter_message(
            text=answer.body.strip(),
            json_message=_payload(message, decision=ANSWER, answer_id=top.answer_id,
                                  score=round(top.score, 4), body=answer.body.strip()),
        )
        return []
