"""Token buckets keyed by client (an address, a conversation id), in bounded memory.

The one rate limiter of the product: the admin API's public intake and the customer channels
both use it, so sharing limits across several processes (a Redis-backed store) is a change to
this module alone. Each key gets ``burst`` requests at once, refilled at ``per_minute``; the
least recently seen keys are forgotten past ``max_keys``, so a flood of distinct addresses
costs a bounded amount of memory (a forgotten key starts again with a full bucket).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict


class TokenBuckets:
    def __init__(self, per_minute: float, burst: float | None = None,
                 max_keys: int = 100_000) -> None:
        self.per_minute = per_minute
        self.burst = max(1.0, burst if burst is not None else per_minute / 4)
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
