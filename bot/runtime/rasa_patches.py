"""Two costs of Rasa's action calls removed, installed by our Rasa entry point
(``bot.runtime.rasa_server``) before Rasa starts. Both keep Rasa's behaviour; only the waste goes.

- **The response's schema was checked on every call.** ``RemoteAction._validate_action_result``
  calls ``jsonschema.validate``, which first validates Rasa's (large) response schema itself
  against the JSON Schema meta-schema, every time: most of Rasa's CPU in an answered turn.
  ``cached_response_validation`` checks the schema once and keeps the validator; a response
  is validated exactly as before, with the same error.
- **A new connection per call.** ``EndpointConfig.request`` opens a new
  ``aiohttp.ClientSession`` for every call and closes it after, so every action call pays for
  a new TCP connection (and, behind a TLS proxy, a handshake) and for building the session.
  ``keep_connections_alive`` makes ``EndpointConfig.session`` hand out one session per endpoint
  and event loop, kept open: ``request`` still writes ``async with self.session() as
  session``, and leaving that block no longer closes it. Headers, authentication and the
  timeout are the endpoint's own, as before.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

_ORIGINAL_SESSION = "_helpdesk_new_session"
_ORIGINAL_VALIDATION = "_helpdesk_validate_every_time"


class _Kept:
    """An async context manager that lends a session without closing it afterwards."""

    def __init__(self, session: Any) -> None:
        self._session = session

    async def __aenter__(self) -> Any:
        return self._session

    async def __aexit__(self, *_exc: object) -> bool:
        return False


def install() -> None:
    """Both patches, once per process (idempotent)."""
    cached_response_validation()
    keep_connections_alive()


def cached_response_validation() -> None:
    """``RemoteAction._validate_action_result`` with its schema checked once."""
    from jsonschema import ValidationError, validators
    from jsonschema.exceptions import best_match
    from rasa.core.actions.action import RemoteAction

    if hasattr(RemoteAction, _ORIGINAL_VALIDATION):
        return
    original = RemoteAction._validate_action_result
    setattr(RemoteAction, _ORIGINAL_VALIDATION, original)
    schema = RemoteAction.action_response_format_spec()
    kind = validators.validator_for(schema)
    kind.check_schema(schema)  # once, here, instead of on every action call
    validator = kind(schema)

    def validate(self: RemoteAction, result: dict[str, Any]) -> bool:
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        try:  # Rasa's own message, added by its own code
            original(self, result)
        except ValidationError as raised:
            raise raised from None
        raise error  # unreachable while both agree; never let a bad response through

    RemoteAction._validate_action_result = validate  # type: ignore[method-assign]


def keep_connections_alive() -> None:
    """Rasa's ``EndpointConfig`` with one kept-alive session per endpoint and event loop."""
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
