"""One Redis URL, two spellings: redis-py wants `unix://path`, kombu `redis+socket://path`.

NEWSLETTER_REDIS_URL may be written either way (the embedded Redis of `newsletter dev`
listens on a unix socket).
"""
from __future__ import annotations

import redis


def for_redis_py(url: str) -> str:
    if url.startswith("redis+socket://"):
        return "unix://" + url.removeprefix("redis+socket://")
    return url


def for_kombu(url: str) -> str:
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


def client(url: str) -> redis.Redis:
    """A redis-py client for NEWSLETTER_REDIS_URL."""
    return redis.Redis.from_url(for_redis_py(url))
