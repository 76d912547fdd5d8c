"""The sign-up gate: a sign-up request is counted against the sign-up rate limits and,
when every limit allows it, queued for a worker, both in one Redis round trip.

Why sign-ups bypass `queue.enqueue` (kombu's producer): a sign-up request does no
database work, so there is no commit to wait for, and it is the busiest public POST.
Through `celery.send_task` its publish took about 0.45 ms of CPU, a third of the whole
request (Celery building the message, kombu serialising it, a new redis-py client for
each publish), and a round trip of its own after the limit check's (docs/performance.md).
Here the message is a small dict serialised with json (queue.redis_message), pushed by
the Lua script that counts the limits (loaded once, then EVALSHA) on a Redis connection
each thread keeps (newsletter.redis_script.ThreadScript).

The counters are fixed windows (Flask-Limiter's strategy for these limits, under its
`LIMITS:` keys): the script counts the request against each limit in turn and stops at
the first it exceeds, so a refused sign-up queues nothing. When RATELIMIT_STORAGE_URI
puts the counters elsewhere they are counted there, then the message is pushed; while
the counters' Redis does not answer they are counted in process memory. No REDIS_URL
(a bare install): messages go through Celery's own transport, where nothing runs them.
"""
from __future__ import annotations

import logging
import math
import time

import redis
from limits import RateLimitItem
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from newsletter import queue
from newsletter.redis_script import ThreadScript
from newsletter.redis_url import for_redis_py

log = logging.getLogger(__name__)

Counted = list[tuple[RateLimitItem, tuple[str, ...]]]  # a limit and whose counter of it

# Redis socket timeouts keep a hung Redis from hanging requests.
REDIS_TIMEOUTS = {"socket_connect_timeout": 1, "socket_timeout": 1}
# After the counters' Redis failed to answer, sign-ups are counted in process memory this
# long before it is asked again.
REDIS_BACKOFF = 10
KEY_PREFIX = "LIMITS:"  # the limits library's (and so Flask-Limiter's) key prefix

# ARGV[1] = n counters: KEYS[i] is counter i, ARGV[2i] its amount, ARGV[2i+1] its window in
# seconds. Then, optionally, KEYS[n+1] a list and ARGV[2n+2] the message to push onto it.
# Returns 0 (the message pushed), or the seconds until the first exceeded limit's window
# ends (nothing pushed).
GATE_SCRIPT = """
local n = tonumber(ARGV[1])
for i = 1, n do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then
    redis.call('EXPIRE', KEYS[i], ARGV[2 * i + 1])
  end
  if count > tonumber(ARGV[2 * i]) then
    return math.max(redis.call('TTL', KEYS[i]), 1)
  end
end
if KEYS[n + 1] then
  redis.call('LPUSH', KEYS[n + 1], ARGV[2 * n + 2])
end
return 0
"""


class SignupGate:
    """Counts sign-up requests and queues the sign-ups they allow; one per app (its Redis
    connection pools live as long as the app)."""

    def __init__(self, broker: redis.Redis | None, counters: redis.Redis | None) -> None:
        self.broker, self.counters = broker, counters
        self.scripts = {id(c): ThreadScript(c, GATE_SCRIPT) for c in (broker, counters) if c}
        self.memory: FixedWindowRateLimiter | None = None
        self.counters_away_until = 0.0

    @classmethod
    def from_config(cls, config) -> SignupGate:
        """The gate of REDIS_URL (the broker) and RATELIMIT_STORAGE_URI (the counters:
        unset, the broker's Redis too; memory:// in process memory)."""
        url = config.get("REDIS_URL")
        broker = redis.Redis.from_url(for_redis_py(url), **REDIS_TIMEOUTS) if url else None
        uri = config.get("RATELIMIT_STORAGE_URI")
        if not uri:
            return cls(broker, broker)
        if uri.startswith("memory"):
            return cls(broker, None)
        return cls(broker, storage_from_string(uri, **REDIS_TIMEOUTS).get_connection())

    def admit(self, counted: Counted, task_name: str, args: tuple) -> int:
        """Count a sign-up and queue `task_name(*args)` when every limit allows it.

        0 once queued; else the seconds until the exceeded limit allows it (nothing
        queued). QueueUnavailable when the broker does not take it.
        """
        if self.counters is self.broker and self.broker is not None and self._counters_answering():
            return self._push(counted, queue.redis_message(task_name, args))  # the one round trip
        wait = self.count(counted)
        if wait:
            return wait
        if self.broker is None:
            queue.publish(task_name, args)
            return 0
        return self._push([], queue.redis_message(task_name, args))

    def count(self, counted: Counted) -> int:
        """Count a request that queues nothing: 0, or the seconds until the limit it exceeds allows it."""
        if not counted:
            return 0
        if self.counters is not None and self._counters_answering():
            try:
                return self._run(self.counters, counted)
            except redis.RedisError as error:  # down, or refusing (out of memory, read-only)
                log.warning("sign-up limits counted in memory for %d s: Redis did not answer or refused (%s)",
                            REDIS_BACKOFF, error)
                self.counters_away_until = time.monotonic() + REDIS_BACKOFF
        return self._count_in_memory(counted)

    def close(self) -> None:
        """Drop the Redis connections (tests, and processes that fork after using them)."""
        for client in {id(c): c for c in (self.broker, self.counters) if c}.values():
            client.connection_pool.disconnect()

    def _push(self, counted: Counted, message: bytes) -> int:
        try:
            return self._run(self.broker, counted, message)
        except redis.RedisError as error:
            raise queue.QueueUnavailable(f"could not queue a sign-up: {error}") from error

    def _run(self, client: redis.Redis, counted: Counted, message: bytes | None = None) -> int:
        keys = [KEY_PREFIX + item.key_for(*ids) for item, ids in counted]
        args = [len(counted)] + [n for item, _ in counted for n in (item.amount, item.get_expiry())]
        if message is not None:
            keys.append(queue.DEFAULT_QUEUE)
            args.append(message)
        return int(self.scripts[id(client)](keys, args))

    def _counters_answering(self) -> bool:
        return time.monotonic() >= self.counters_away_until

    def _count_in_memory(self, counted: Counted) -> int:
        if self.memory is None:  # made on first need: MemoryStorage starts a timer thread
            self.memory = FixedWindowRateLimiter(MemoryStorage())
        for item, ids in counted:
            if not self.memory.hit(item, *ids):
                reset = self.memory.get_window_stats(item, *ids).reset_time
                return max(1, math.ceil(reset - time.time()))
        return 0
