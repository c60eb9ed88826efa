"""Rasa's Redis lock store, made safe for several Rasa instances.

Rasa's ``RedisLockStore`` keeps a conversation's ticket queue as one JSON value and changes it
by reading, editing and writing it back. Two instances taking a ticket for the same
conversation at the same moment both read the empty queue, both write "ticket 0", and both
process their message at once: the second save of the tracker then drops the first message's
events (seen in ``tests/helpdesk/test_scaled.py``; RasaHQ/rasa#9213, whose fix went to Rasa's
commercial edition only). Here each of those read-edit-write steps runs under a short Redis
mutex per conversation (redis-py's ``Lock``: ``SET NX PX`` with a token, released by a
script), so the queue itself is what Rasa meant it to be: one message of a conversation at a
time, whichever instance receives it. ``endpoints.yml`` names this class.
"""

from __future__ import annotations

from typing import Any

from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

GUARD_SECONDS = 5.0  # a read-edit-write takes a millisecond; a crashed holder's guard lapses


class SerialRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs: Any) -> None:
        # Rasa builds a lock store named by module path with its endpoint config alone.
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs}
        super().__init__(**kwargs)

    def _guard(self, conversation_id: str) -> Any:
        return self.red.lock(f"{self.key_prefix}{conversation_id}:guard",
                             timeout=GUARD_SECONDS, blocking_timeout=GUARD_SECONDS)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        try:
            with self._guard(conversation_id):
                return super().issue_ticket(conversation_id, lock_lifetime)
        except LockError:
            raise
        except Exception as error:  # redis-py's own LockError, a connection error
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def update_lock(self, conversation_id: str) -> None:
        with self._guard(conversation_id):
            super().update_lock(conversation_id)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        with self._guard(conversation_id):
            super().finish_serving(conversation_id, ticket_number)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        # One guard over both steps: a ticket issued between them must not lose its lock.
        with self._guard(conversation_id):
            LockStore.finish_serving(self, conversation_id, ticket_number)
            if not self.is_someone_waiting(conversation_id):
                self.delete_lock(conversation_id)
