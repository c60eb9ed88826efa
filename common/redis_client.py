"""The product's Redis connections (rate limits, client message ids): one way to open them,
and one way to say Redis is away without flooding the log."""

from __future__ import annotations

import logging
import time
from typing import Any


def connect(url: str, timeout: float) -> Any:  # redis.Redis
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


class AwayWarning:
    """Logs that Redis is unreachable at most once a minute per user of it."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger, self.what = logger, what
        self._warned_at = float("-inf")

    def __call__(self, error: Exception) -> None:
        if time.monotonic() - self._warned_at > 60:
            self._warned_at = time.monotonic()
            self.logger.warning("%s: Redis is unreachable (%s)", self.what, error)
