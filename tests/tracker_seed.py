"""Writes conversations into a tracker store with Rasa's own ``SQLTrackerStore``, so the admin
API is tested against exactly the rows a running Rasa writes."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import make_url

DAY = 86400.0


@dataclass
class Say:
    """One customer turn: what they wrote, what the classifier said, what the bot did."""

    text: str
    intent: str
    confidence: float
    model_id: str
    message_id: str
    bot: list[dict] = field(default_factory=list)  # BotUttered kwargs
    actions: list[str] = field(default_factory=list)
    pause: bool = False


def rasa_store(url: str):  # rasa.core.tracker_store.SQLTrackerStore
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return SQLTrackerStore(Domain.empty(), dialect="sqlite", db=parsed.database)
    return SQLTrackerStore(Domain.empty(), dialect="postgresql", host=parsed.host,
                           port=parsed.port or 5432, db=parsed.database,
                           username=parsed.username, password=parsed.password)


def seed(url: str, conversations: dict[str, list[Say]], ages: dict[str, float],
         broker_url: str | None = None, queue: str | None = None) -> None:
    """Save each conversation; its turns happen ``ages[id]`` seconds ago, a second apart.
    With ``broker_url``, Rasa's RabbitMQ event broker streams every saved event to ``queue``
    as a running Rasa configured with it does."""
    from rasa.shared.core.events import (
        ActionExecuted,
        BotUttered,
        ConversationPaused,
        UserUttered,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    trackers = []
    for session_id, turns in conversations.items():
        at = time.time() - ages[session_id]
        events = []
        for turn in turns:
            parse = {"intent": {"name": turn.intent, "confidence": turn.confidence},
                     "entities": [], "text": turn.text, "message_id": turn.message_id,
                     "intent_ranking": [{"name": turn.intent, "confidence": turn.confidence}]}
            events.append(UserUttered(turn.text, parse["intent"], parse_data=parse,
                                      timestamp=at, message_id=turn.message_id,
                                      input_channel="socketio",
                                      metadata={"model_id": turn.model_id}))
            for action in turn.actions:
                events.append(ActionExecuted(action, timestamp=at + 0.1))
            for bot in turn.bot:
                events.append(BotUttered(timestamp=at + 0.2, **bot))
            if turn.pause:
                events.append(ConversationPaused(timestamp=at + 0.3))
            events.append(ActionExecuted("action_listen", timestamp=at + 0.4))
            at += 1
        trackers.append(DialogueStateTracker.from_events(session_id, events))
    _run(_save_all(url, trackers, broker_url, queue))


async def _save_all(url: str, trackers: list, broker_url: str | None,
                    queue: str | None) -> None:
    store = rasa_store(url)
    broker = None
    if broker_url is not None:
        from urllib.parse import urlsplit

        from rasa.core.brokers.pika import PikaEventBroker

        parts = urlsplit(broker_url)
        broker = PikaEventBroker(parts.hostname or "127.0.0.1", parts.username or "guest",
                                 parts.password or "guest", port=parts.port or 5672,
                                 queues=[queue or "helpdesk_events"],
                                 event_loop=asyncio.get_running_loop())
        await broker.connect()
        store.event_broker = broker
    for tracker in trackers:
        await store.save(tracker)
    if broker is not None:
        # Rasa publishes from background tasks: let them finish before closing.
        while broker._background_tasks:
            await asyncio.sleep(0.05)
        await broker.close()


def _run(coroutine: Any) -> None:
    """Run a store call to completion, also from a thread whose event loop is busy (the
    Playwright sync API holds one in browser tests): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def save_events(url: str, session_id: str, events: list) -> None:
    """Save Rasa events as one conversation, as Rasa itself would."""
    from rasa.shared.core.trackers import DialogueStateTracker

    _run(rasa_store(url).save(DialogueStateTracker.from_events(session_id, events)))


def banking_conversations() -> tuple[dict[str, list[Say]], dict[str, float]]:
    """Five conversations whose figures the tests know by heart (see test_admin_metrics)."""
    conversations = {
        "c-answer": [
            Say("When will my card arrive?", "card_arrival", 0.92, "m1", "u-1",
                actions=["action_answer"],
                bot=[{"text": "Cards arrive in 5 to 7 working days.",
                      "data": {"custom": {"data": {"answer_id": 101, "decision": "answer",
                                                   "intent": "card_arrival"}}}}]),
            Say("thanks", "thank_you", 0.97, "m1", "u-2", actions=["utter_you_are_welcome"],
                bot=[{"text": "You're welcome!",
                      "metadata": {"utter_action": "utter_you_are_welcome"}}]),
        ],
        "c-fallback": [
            Say("blorp zing", "nlu_fallback", 0.2, "m1", "u-3", actions=["action_answer"],
                bot=[{"text": "Sorry, I don't have an answer for that yet.",
                      "metadata": {"utter_action": "utter_no_answer"}}]),
        ],
        "c-clarify": [
            Say("problem with my card", "card_arrival", 0.45, "m2", "u-4",
                actions=["action_answer"],
                bot=[{"text": "Please pick one:",
                      "data": {"buttons": [{"title": "Card delivery", "payload": "x"}],
                               "custom": {"decision": "clarify", "answer_ids": [101, 105]}}}]),
        ],
        "c-handoff": [
            Say("Ünïcödé: I want a human <b>now</b>", "request_human", 0.88, "m2", "u-5",
                actions=["utter_handoff"], pause=True,
                bot=[{"text": "I'll pass you to a member of our support team.",
                      "metadata": {"utter_action": "utter_handoff"}}]),
        ],
        "c-old": [
            Say("hello", "greet", 0.99, "m0", "u-6", actions=["utter_greet"],
                bot=[{"text": "Hi!", "metadata": {"utter_action": "utter_greet"}}]),
        ],
    }
    ages = {"c-answer": 3600, "c-fallback": 3000, "c-clarify": 2400, "c-handoff": 1800,
            "c-old": 10 * DAY}
    return conversations, ages
