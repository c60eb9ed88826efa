"""Rasa's HTTP calls to the action server and the model server over kept-alive connections.

Rasa's ``EndpointConfig.request`` opens a new ``aiohttp.ClientSession`` for every call and
closes it after, so every action call pays for a new TCP connection (and, behind a TLS proxy,
a handshake) and for building the session. ``install`` makes ``EndpointConfig.session``
hand out one session per endpoint and event loop, kept open: ``request`` still writes
``async with self.session() as session``, and leaving that block no longer closes it.
Headers, authentication and the timeout are the endpoint's own, as before.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

_ORIGINAL_SESSION = "_helpdesk_new_session"


class _Kept:
    """An async context manager that lends a session without closing it afterwards."""

    def __init__(self, session: Any) -> None:
        self._session = session

    async def __aenter__(self) -> Any:
        return self._session

    async def __aexit__(self, *_exc: object) -> bool:
        return False


def install() -> None:
    """Patch Rasa's ``EndpointConfig`` once per process (idempotent)."""
    from rasa.utils.endpoints import EndpointConfig

    if hasattr(EndpointConfig, _ORIGINAL_SESSION):
        return
    new_session = EndpointConfig.session
    setattr(EndpointConfig, _ORIGINAL_SESSION, new_session)
    kept: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()

    def session(self: EndpointConfig) -> Any:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside a loop: Rasa's own behaviour
            return new_session(self)
        sessions = kept.setdefault(loop, {})
        current = sessions.get(id(self))
        if current is None or current.closed:
            current = sessions[id(self)] = new_session(self)
        return _Kept(current)

    EndpointConfig.session = session  # type: ignore[method-assign]
