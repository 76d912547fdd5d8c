"""One sending rate for every worker: a token bucket kept in Redis.

Celery's own `rate_limit` counts per worker process; a mail provider counts per account.
The bucket lives in one Redis hash and changes only inside one Lua script, which reads
Redis's own clock, so any number of processes on any number of machines share it
exactly. `SEND_RATE` tokens drip in per second, up to `SEND_BURST`; each message takes
one. `SEND_RATE = 0` turns the limit off (no Redis round trip at all).
"""
from __future__ import annotations

import random
import time
from typing import Protocol

import redis

from newsletter.redis_url import client

BUCKET_KEY = "newsletter:send-rate"
# Waiting longer than this at once would make a paused or cancelled send slow to stop.
LONGEST_SLEEP = 0.25
# A Redis that restarts comes back within seconds; a batch waits this long for it.
REDIS_PATIENCE = 60.0

# Returns 0 when `n` tokens were taken, else the microseconds until they will be there.
TAKE = """
local rate, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(saved[1]), tonumber(saved[2])
if tokens == nil or at == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000000)
local wait = 0
if tokens >= n then
  tokens = tokens - n
else
  wait = math.ceil((n - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
return wait
"""


class ThrottleUnavailable(Exception):
    """Redis did not answer within REDIS_PATIENCE: the rate cannot be kept."""


class Limiter(Protocol):
    def acquire(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


class NoLimit:
    """SEND_RATE = 0: send as fast as the workers can."""

    def acquire(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class TokenBucket:
    """`acquire(n)` blocks until `n` tokens of the shared bucket are taken."""

    def __init__(self, redis_client: redis.Redis, rate: float, burst: float = 0,
                 key: str = BUCKET_KEY) -> None:
        if rate <= 0:
            raise ValueError("a token bucket needs a positive rate")
        self.redis = redis_client
        self.rate = float(rate)
        self.burst = float(burst) if burst and burst > 0 else max(1.0, self.rate)
        self.key = key
        self._take = redis_client.register_script(TAKE)

    def acquire(self, n: int = 1) -> None:
        """Take `n` tokens, sleeping (briefly, repeatedly) until the bucket has them."""
        if n > self.burst:
            raise ValueError(f"cannot take {n} tokens at once from a bucket of {self.burst:g}")
        while True:
            wait_us = self._try_take(n)
            if wait_us <= 0:
                return
            # Jitter keeps waiting processes from all asking again at the same instant.
            time.sleep(min(wait_us / 1e6, LONGEST_SLEEP) * random.uniform(1.0, 1.2))

    def _try_take(self, n: int) -> int:
        deadline = time.monotonic() + REDIS_PATIENCE
        while True:
            try:
                return int(self._take(keys=[self.key], args=[self.rate, self.burst, n]))
            except (redis.ConnectionError, redis.TimeoutError) as e:
                if time.monotonic() > deadline:
                    raise ThrottleUnavailable(f"Redis unreachable for the send rate: {e}") from e
                time.sleep(0.5)

    def close(self) -> None:
        self.redis.close()


def limiter(config) -> Limiter:
    """The configured limiter: a TokenBucket on REDIS_URL when SEND_RATE > 0, else NoLimit."""
    rate = float(config.get("SEND_RATE") or 0)
    if rate <= 0:
        return NoLimit()
    if not config.get("REDIS_URL"):
        raise ValueError("SEND_RATE needs NEWSLETTER_REDIS_URL: the bucket is kept in Redis")
    return TokenBucket(client(config["REDIS_URL"]), rate, float(config.get("SEND_BURST") or 0))
