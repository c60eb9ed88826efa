"""The one rate limiter (``common.ratelimit``): bursts, refill, the off switch and its bound,
in this process and shared through the machines' real Redis."""

from __future__ import annotations

import time
import uuid

import pytest

from common.ratelimit import RedisTokenBuckets, TokenBuckets, token_buckets


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


def test_instances_sharing_redis_share_one_bucket_per_client(redis_url: str) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    # Two processes' limiters (two Rasa instances, two API workers), one client.
    first, second = (RedisTokenBuckets(redis_url, name, per_minute=60, burst=3)
                     for _ in range(2))
    assert [first.take("a"), second.take("a"), first.take("a")] == [0.0, 0.0, 0.0]
    wait = second.take("a")
    assert 0.9 < wait <= 1.0  # one token a second at 60 a minute
    assert first.take("b") == 0.0  # another client has its own bucket
    time.sleep(1.05)
    assert second.take("a") == 0.0  # refilled, by Redis's clock


def test_a_full_bucket_expires_from_redis(redis_url: str) -> None:
    import redis

    name = f"test-{uuid.uuid4().hex[:8]}"
    buckets = RedisTokenBuckets(redis_url, name, per_minute=6000, burst=2)
    buckets.take("gone")
    ttl = redis.Redis.from_url(redis_url).pttl(f"helpdesk:rate:{name}:gone")
    assert 0 < ttl <= 1100  # back to full within 10 ms, then a second's grace


def test_an_unreachable_redis_lets_customers_through(caplog: pytest.LogCaptureFixture) -> None:
    buckets = RedisTokenBuckets("redis://127.0.0.1:1/0", "down", per_minute=1, burst=1,
                                timeout=0.5)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert "Redis is unreachable" in caplog.text


def test_the_setting_chooses_redis_or_this_process(redis_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from common.config import get_settings

    monkeypatch.delenv("HELPDESK_REDIS_URL", raising=False)
    get_settings.cache_clear()
    assert isinstance(token_buckets("x", 60), TokenBuckets)
    monkeypatch.setenv("HELPDESK_REDIS_URL", redis_url)
    get_settings.cache_clear()
    assert isinstance(token_buckets("x", 60), RedisTokenBuckets)
    get_settings.cache_clear()
