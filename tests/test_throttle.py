"""The shared send rate: a token bucket in the real Redis, taken from many clients at once."""
from __future__ import annotations

import threading
import time

import pytest

from newsletter import throttle
from newsletter.mailcatcher import free_port
from newsletter.redis_url import client


@pytest.fixture
def bucket_of(redis_url):
    made = []

    def make(rate, burst=0, key="test:bucket"):
        bucket = throttle.TokenBucket(client(redis_url), rate, burst, key=key)
        made.append(bucket)
        return bucket

    yield make
    for bucket in made:
        bucket.close()


def test_rate_zero_means_no_limit_and_no_redis():
    assert isinstance(throttle.limiter({"SEND_RATE": 0, "REDIS_URL": None}), throttle.NoLimit)


def test_a_positive_rate_is_a_bucket_in_redis(redis_url):
    limiter = throttle.limiter({"SEND_RATE": 25, "SEND_BURST": 0, "REDIS_URL": redis_url})
    try:
        assert isinstance(limiter, throttle.TokenBucket)
        assert (limiter.rate, limiter.burst) == (25.0, 25.0)  # one second's worth by default
    finally:
        limiter.close()


def test_a_rate_without_redis_is_a_configuration_error():
    with pytest.raises(ValueError, match="REDIS_URL"):
        throttle.limiter({"SEND_RATE": 5, "REDIS_URL": None})


def test_the_burst_is_granted_at_once_then_the_bucket_is_empty(bucket_of):
    # One token a second: however slow the machine, no token refills between these calls.
    bucket = bucket_of(rate=1, burst=5, key="test:burst")
    assert [bucket._try_take(1) <= 0 for _ in range(5)] == [True] * 5  # no wait asked
    assert bucket._try_take(1) > 0  # the sixth must wait


def test_after_the_burst_the_rate_holds(bucket_of):
    bucket = bucket_of(rate=40, burst=5)
    start = time.monotonic()
    for _ in range(25):
        bucket.acquire()
    # 20 tokens beyond the burst at 40 a second take at least half a second (a floor: a
    # slow machine only takes longer).
    assert time.monotonic() - start >= 20 / 40 * 0.95


def test_many_clients_together_never_exceed_the_rate(bucket_of):
    rate, burst, seconds = 60.0, 6.0, 2.0
    buckets = [bucket_of(rate, burst) for _ in range(6)]
    grants: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def take(bucket):
        while time.monotonic() < stop:
            bucket.acquire()
            with lock:
                grants.append(time.monotonic())

    threads = [threading.Thread(target=take, args=(b,)) for b in buckets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    grants.sort()
    # In any window, at most the burst plus what dripped in during it (a little slack for
    # the clocks of Redis and of this process, read at slightly different moments).
    for i, begin in enumerate(grants):
        for j in range(i, len(grants)):
            window = grants[j] - begin
            assert j - i + 1 <= burst + rate * window + 2, (j - i + 1, window)
    # …and the clients did keep the bucket busy: close to the rate overall.
    assert len(grants) >= rate * seconds * 0.8


def test_more_tokens_than_the_bucket_holds_is_an_error(bucket_of):
    with pytest.raises(ValueError):
        bucket_of(rate=10, burst=3).acquire(4)


def test_an_unreachable_redis_is_reported_after_waiting(monkeypatch):
    monkeypatch.setattr(throttle, "REDIS_PATIENCE", 1.0)
    bucket = throttle.TokenBucket(client(f"redis://127.0.0.1:{free_port()}/0"), rate=10)

    with pytest.raises(throttle.ThrottleUnavailable):
        bucket.acquire()
    bucket.close()
