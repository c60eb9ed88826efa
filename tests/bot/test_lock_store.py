"""The Redis lock store of several Rasa instances (``bot/runtime/lock_store.py``), against the
machines' real Redis: tickets are never issued twice, and one conversation's turns never
overlap, however many instances ask at once."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

from bot.runtime.lock_store import SerialRedisLockStore
from bot.runtime.rasa_config import lock_store_config


@pytest.fixture
def stores(redis_url: str) -> list[SerialRedisLockStore]:
    from rasa.utils.endpoints import EndpointConfig

    config = lock_store_config(redis_url, timeout=5.0)
    kwargs = {k: v for k, v in config.items() if k not in ("type", "url")}
    # As Rasa builds it from endpoints.yml: one store per instance.
    return [SerialRedisLockStore(endpoint_config=EndpointConfig(url=str(config["url"]),
                                                                **kwargs))
            for _ in range(4)]


def test_tickets_taken_at_once_by_several_instances_are_all_different(
        stores: list[SerialRedisLockStore]) -> None:
    conversation = uuid.uuid4().hex
    barrier = threading.Barrier(40)
    tickets: list[int] = []

    def take(store: SerialRedisLockStore) -> None:
        barrier.wait()
        tickets.append(store.issue_ticket(conversation))

    threads = [threading.Thread(target=take, args=(stores[n % 4],)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(tickets) == list(range(40))
    stores[0].delete_lock(conversation)


def test_one_conversation_is_served_one_turn_at_a_time_across_instances(
        stores: list[SerialRedisLockStore]) -> None:
    conversation = uuid.uuid4().hex
    inside: list[int] = []
    overlaps: list[int] = []

    async def turn(store: SerialRedisLockStore, n: int) -> None:
        async with store.lock(conversation, wait_time_in_seconds=0.01):
            if inside:
                overlaps.append(n)
            inside.append(n)
            await asyncio.sleep(0.02)
            inside.remove(n)

    def instance(store: SerialRedisLockStore, first: int) -> None:
        async def run() -> None:
            await asyncio.gather(*(turn(store, first + k) for k in range(5)))
        asyncio.run(run())

    threads = [threading.Thread(target=instance, args=(store, 10 * i))
               for i, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert stores[0].get_lock(conversation) is None  # the last turn cleaned up
