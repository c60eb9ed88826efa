"""The tracker store Rasa runs with keeps everything of a turn except the sentence vector the
classifier handed to the retriever, on SQLite and PostgreSQL, and the event broker's copy
lacks it too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.utils.endpoints import EndpointConfig

from bot.runtime import rasa_config
from bot.runtime.tracker_store import CompactSQLTrackerStore
from nlu import handover


@pytest.fixture(params=["sqlite", "postgresql"])
def tracker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    return request.getfixturevalue("postgres_url")


def test_a_saved_turn_keeps_its_parse_data_but_not_the_vector(tracker_url: str) -> None:
    config = EndpointConfig.from_dict(rasa_config.tracker_store_config(tracker_url))
    store = TrackerStore.create(config, Domain.empty())
    inner = getattr(store, "_tracker_store", store)
    while not isinstance(inner, CompactSQLTrackerStore) and hasattr(inner, "_tracker_store"):
        inner = inner._tracker_store
    assert isinstance(inner, CompactSQLTrackerStore)  # not Rasa's in-memory fallback
    published: list[dict] = []

    class Broker:  # what the event broker is handed when the store saves
        def publish(self, event: dict) -> None:
            published.append(event)

        def is_ready(self) -> bool:
            return True

    inner.event_broker = Broker()  # type: ignore[assignment]
    vector = handover.pack("enc-1", [0.5] * 384)  # type: ignore[arg-type]
    parse = {"intent": {"name": "card_arrival", "confidence": 0.9},
             "intent_ranking": [{"name": "card_arrival", "confidence": 0.9}],
             handover.PARSE_KEY: vector}

    async def run() -> None:
        tracker = await store.get_or_create_tracker("c-1")
        tracker.update(UserUttered("where is my card", parse["intent"], parse_data=parse))
        # During the turn, the action server sees the vector in the latest message.
        assert tracker.latest_message.parse_data[handover.PARSE_KEY] == vector
        tracker.update(ActionExecuted("action_answer"))
        await store.save(tracker)
        again = await store.retrieve("c-1")
        assert again is not None
        [stored] = [e for e in again.events if isinstance(e, UserUttered)]
        assert stored.intent_name == "card_arrival"
        assert stored.parse_data["intent_ranking"] == parse["intent_ranking"]
        assert handover.PARSE_KEY not in stored.parse_data

    asyncio.run(run())
    engine = sqlalchemy.create_engine(tracker_url)
    with engine.connect() as connection:
        rows = [r[0] for r in connection.execute(sqlalchemy.text("SELECT data FROM events"))]
    engine.dispose()
    assert any('"card_arrival"' in row for row in rows)
    assert not any(handover.PARSE_KEY in row for row in rows)
    assert published and not any(handover.PARSE_KEY in str(e) for e in published)


def test_a_turn_saved_after_the_database_dropped_its_connections_is_stored(
        postgres_url: str) -> None:
    """What a PostgreSQL restart does to a running Rasa: every pooled connection is gone.
    Rasa's own store fails the save, and its fail-safe wrapper keeps the turn in memory only."""
    config = EndpointConfig.from_dict(rasa_config.tracker_store_config(postgres_url))
    store = CompactSQLTrackerStore(host=config.url, domain=Domain.empty(), **config.kwargs)
    database = sqlalchemy.engine.make_url(postgres_url).database
    admin = sqlalchemy.create_engine(postgres_url.rsplit("/", 1)[0] + "/postgres",
                                     isolation_level="AUTOCOMMIT")

    async def run() -> None:
        tracker = await store.get_or_create_tracker("c-2")
        tracker.update(UserUttered("first message", {"name": "greet", "confidence": 1.0}))
        await store.save(tracker)  # the pool now holds a connection
        with admin.connect() as connection:
            killed = connection.execute(sqlalchemy.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database}).scalar()
        assert killed >= 1
        tracker.update(UserUttered("second message", {"name": "greet", "confidence": 1.0}))
        await store.save(tracker)
        again = await store.retrieve("c-2")
        assert again is not None
        assert [e.text for e in again.events if isinstance(e, UserUttered)] == [
            "first message", "second message"]

    try:
        asyncio.run(run())
    finally:
        store.engine.dispose()
        admin.dispose()
