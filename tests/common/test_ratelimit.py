"""The one rate limiter (``common.ratelimit``): bursts, refill, the off switch and its bound."""

from __future__ import annotations

from common.ratelimit import TokenBuckets


def test_a_burst_passes_then_the_next_waits_for_its_token() -> None:
    buckets = TokenBuckets(per_minute=60, burst=3)
    assert [buckets.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = buckets.take("a", now=0.0)
    assert 0.9 < wait <= 1.0  # one token a second at 60 a minute
    assert buckets.take("b", now=0.0) == 0.0  # another client has its own bucket
    assert buckets.take("a", now=1.01) == 0.0  # refilled
    assert buckets.take("a", now=1.02) > 0


def test_zero_per_minute_switches_the_limit_off() -> None:
    buckets = TokenBuckets(per_minute=0)
    assert all(buckets.take("a", now=0.0) == 0.0 for _ in range(1000))
    assert len(buckets) == 0


def test_memory_stays_bounded_under_a_flood_of_distinct_clients() -> None:
    buckets = TokenBuckets(per_minute=6, burst=1, max_keys=100)
    buckets.take("steady", now=0.0)
    for i in range(10_000):
        buckets.take(f"198.51.100.{i}", now=1.0)
        if i % 50 == 0:
            buckets.take("steady", now=1.0)  # recently seen: kept, still limited
    assert len(buckets) == 100
    assert buckets.take("steady", now=1.0) > 0
