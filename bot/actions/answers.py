"""``action_answer``: reply to an FAQ-like turn with the curated answer for its intent.

Answers are fetched from the admin API at reply time, so an answer edited or published there
is what the very next customer sees, with no retraining. (The FAISS retriever replaces the
by-intent lookup with a search over all published answers.)
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import settings

logger = logging.getLogger(__name__)


async def fetch_published_answer(intent: str) -> dict[str, Any] | None:
    """The first published answer for ``intent``, or None (also when the API is unreachable)."""
    url = f"{settings.admin_api_url()}/api/v1/answers/published"
    try:
        async with httpx.AsyncClient(timeout=settings.admin_api_timeout()) as client:
            reply = await client.get(url, params={"intent": intent, "limit": 1})
            reply.raise_for_status()
            answers = reply.json()
    except (httpx.HTTPError, ValueError) as error:
        logger.warning("answer lookup for intent %s failed: %s", intent, error)
        return None
    return answers[0] if answers else None


class ActionAnswer(Action):
    def name(self) -> str:
        return "action_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        answer = await fetch_published_answer(intent) if intent else None
        if answer is None:
            dispatcher.utter_message(response="utter_no_answer")
            return []
        dispatcher.utter_message(
            text=answer["body"].strip(),
            json_message={"answer_id": answer["id"], "intent": intent},
        )
        return []
