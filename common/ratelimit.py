"""Token buckets keyed by client (an address, a conversation id), in bounded memory.

The one rate limiter of the product: the admin API's public intake and the customer channels
both use it. Each key gets ``burst`` requests at once, refilled at ``per_minute``.

:func:`token_buckets` picks where the buckets live. Without ``HELPDESK_REDIS_URL`` they live in
the process (:class:`TokenBuckets`): the least recently seen keys are forgotten past
``max_keys``, so a flood of distinct addresses costs a bounded amount of memory (a forgotten
key starts again with a full bucket). With it, every instance shares them in Redis
(:class:`RedisTokenBuckets`): one atomic script per take, a key that expires once its bucket
would be full again, and Redis's clock, so instances on several machines agree. The well-kept
libraries of the field (``limits``, which slowapi builds on) require ``packaging>=21``, which
Rasa 3.6 pins below, so the bucket is ours, in one small script.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Protocol

logger = logging.getLogger(__name__)


class Buckets(Protocol):
    per_minute: float

    def take(self, key: str) -> float:
        """0 when ``key`` may go on (one token taken), else the seconds until it may."""


class TokenBuckets:
    def __init__(self, per_minute: float, burst: float | None = None,
                 max_keys: int = 100_000) -> None:
        self.per_minute = per_minute
        self.burst = _burst(per_minute, burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when ``key`` may go on (one token taken), else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.per_minute / 60)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) * 60 / self.per_minute
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)


# The same bucket as TokenBuckets.take, run atomically inside Redis. Numbers go back as a
# string: Redis truncates a Lua number to an integer.
_TAKE = """
local rate = tonumber(ARGV[1]) / 60
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'last', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisTokenBuckets:
    """The buckets of every instance, in Redis under ``helpdesk:rate:<name>:<key>``.

    Redis being away must not silence customers or lock staff out: a take that cannot reach
    it lets the request through and logs why (at most once a minute)."""

    def __init__(self, url: str, name: str, per_minute: float, burst: float | None = None,
                 timeout: float = 5.0) -> None:
        from common.redis_client import AwayWarning, connect

        self.per_minute = per_minute
        self.burst = _burst(per_minute, burst)
        self.prefix = f"helpdesk:rate:{name}:"
        self._client = connect(url, timeout)
        self._take = self._client.register_script(_TAKE)
        self._warn = AwayWarning(logger, f"rate limit {self.prefix} not applied")

    def take(self, key: str) -> float:
        if self.per_minute <= 0:
            return 0.0
        import redis

        try:
            return float(self._take(keys=[self.prefix + key], args=[self.per_minute, self.burst]))
        except redis.RedisError as error:
            self._warn(error)
            return 0.0


def token_buckets(name: str, per_minute: float, burst: float | None = None) -> Buckets:
    """Shared buckets when ``HELPDESK_REDIS_URL`` is set, this process's own otherwise."""
    from common.config import get_settings

    settings = get_settings()
    if settings.redis_url:
        return RedisTokenBuckets(settings.redis_url, name, per_minute, burst,
                                 settings.redis_timeout)
    return TokenBuckets(per_minute, burst)


def _burst(per_minute: float, burst: float | None) -> float:
    return max(1.0, burst if burst is not None else per_minute / 4)
