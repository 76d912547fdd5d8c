"""Rate limits: the sign-up routes' own check, per client IP and per address, and
Flask-Limiter for the app's other limited routes (the console's sign-in).

Counters live in the app's Redis, so every gunicorn worker and every web host shares
them. Each app gets limiters of its own (tests build many apps in one process); the
sign-up views are wrapped when the web layer calls `limit_signups`.

The sign-up routes are the busiest public POSTs, so their limits take one Redis round
trip: a Lua script counts the request against every limit in turn (fixed windows, the
strategy Flask-Limiter used for them, under the same `LIMITS:` keys) and stops at the
first it exceeds. Flask-Limiter spent two to three round trips and about 0.5 ms of CPU
on them per sign-up (docs/performance.md).

Configuration: RATELIMIT_ENABLED, SIGNUP_LIMIT_PER_IP, SIGNUP_LIMIT_PER_ADDRESS (limit
strings such as "10 per minute; 100 per hour"), RATELIMIT_STORAGE_URI, and any other
RATELIMIT_* key Flask-Limiter reads for the routes it limits.
"""
from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable

import redis
from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from newsletter.addresses import email_hash

log = logging.getLogger(__name__)

TOO_MANY = "Too many sign-ups from here; please try again later."
# Redis socket timeouts keep a hung Redis from hanging requests.
REDIS_TIMEOUTS = {"socket_connect_timeout": 1, "socket_timeout": 1}
# After Redis failed to answer, sign-ups are counted in process memory this long before
# Redis is asked again.
REDIS_BACKOFF = 10

# KEYS[i] is the counter of limit i, ARGV[2i-1] its amount and ARGV[2i] its window in
# seconds. Counts the request against each limit in turn and stops at the first it
# exceeds, as Flask-Limiter does: 0, or the seconds until that limit's window ends.
COUNT_SCRIPT = """
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then
    redis.call('EXPIRE', key, ARGV[2 * i])
  end
  if count > tonumber(ARGV[2 * i - 1]) then
    return math.max(redis.call('TTL', key), 1)
  end
end
return 0
"""

Counted = list[tuple[RateLimitItem, tuple[str, ...]]]  # a limit and whose counter of it


def init_app(app: Flask) -> None:
    limiter = Limiter(
        key_func=client_ip,
        storage_uri=storage_uri(app.config),
        storage_options=REDIS_TIMEOUTS,
        # A Redis outage must not turn requests into 500s: count in process memory until
        # Redis answers again (Flask-Limiter checks it with back-off), and should even that
        # fail, log and let the request through.
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    limiter.init_app(app)
    app.extensions["newsletter.limiter"] = limiter
    app.after_request(retry_after)


def storage_uri(config) -> str:
    """Where the counters live: RATELIMIT_STORAGE_URI, else the app's Redis."""
    if config.get("RATELIMIT_STORAGE_URI"):
        return config["RATELIMIT_STORAGE_URI"]
    url = config.get("REDIS_URL")
    if not url:
        # No Redis configured (a bare install): counters live in each process's memory,
        # so every gunicorn worker counts on its own. Deployments set NEWSLETTER_REDIS_URL.
        return "memory://"
    # The `limits` library spells unix sockets `redis+unix://`; ours may come as
    # `unix://` (redis-py) or `redis+socket://` (kombu).
    for prefix in ("unix://", "redis+socket://"):
        if url.startswith(prefix):
            return "redis+unix://" + url.removeprefix(prefix)
    return url


def limiter(app: Flask | None = None) -> Limiter:
    return (app or current_app).extensions["newsletter.limiter"]


def close(app: Flask) -> None:
    """Drop the limiters' Redis connections (tests, and processes that fork after using them)."""
    ext = limiter(app)
    client = getattr(ext.storage, "storage", None) if ext.enabled else None  # limits' RedisStorage
    if client is not None:
        client.connection_pool.disconnect()
    signups = app.extensions.get("newsletter.signup_limits")
    if signups is not None:
        signups.close()


def limit_signups(app: Flask, endpoints: list[str], address: Callable[[], str | None]) -> None:
    """Put the per-IP and per-address limits on the sign-up views; all of them share both.

    `address` gives the normalised address a request signs up, or None when it has no
    valid one: such requests count against their IP only. Checked when the view is
    called, after CSRFProtect: a refused form counts against nothing.
    """
    counters = SignupLimits(storage_uri(app.config))
    app.extensions["newsletter.signup_limits"] = counters

    def check() -> None:
        config = current_app.config
        if not config["RATELIMIT_ENABLED"]:
            return
        counted = [(item, ("signup-ip", client_ip())) for item in parsed(config["SIGNUP_LIMIT_PER_IP"])]
        submitted = address()
        if submitted is not None:
            digest = email_hash(submitted)
            counted += [(item, ("signup-address", digest))
                        for item in parsed(config["SIGNUP_LIMIT_PER_ADDRESS"])]
        wait = counters.hit(counted)
        if wait:
            raise TooManyRequests(TOO_MANY, retry_after=wait)

    for endpoint in endpoints:
        app.view_functions[endpoint] = checked_first(check, app.view_functions[endpoint])


def checked_first(check: Callable[[], None], view: Callable) -> Callable:
    @functools.wraps(view)
    def checked(*args, **kwargs):
        check()
        return view(*args, **kwargs)

    return checked


@functools.lru_cache(maxsize=64)
def parsed(limit_string: str) -> tuple[RateLimitItem, ...]:
    """The limits of a string such as "10 per minute; 100 per hour"."""
    return tuple(parse_many(limit_string))


class SignupLimits:
    """Counters of the sign-up limits: one Redis round trip per request, memory meanwhile when Redis is away."""

    def __init__(self, uri: str):
        self.storage = storage_from_string(uri, **({} if uri.startswith("memory") else REDIS_TIMEOUTS))
        self.redis = isinstance(self.storage, RedisStorage)
        self.script = self.storage.get_connection().register_script(COUNT_SCRIPT) if self.redis else None
        self.memory = None if self.redis else FixedWindowRateLimiter(self.storage)
        self.redis_away_until = 0.0

    def hit(self, counted: Counted) -> int:
        """Count a request against `counted`: 0, or the seconds until the limit it exceeds allows it."""
        if self.redis and time.monotonic() >= self.redis_away_until:
            try:
                return self._hit_redis(counted)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
                log.warning("sign-up limits counted in memory for %d s: Redis did not answer (%s)",
                            REDIS_BACKOFF, error)
                self.redis_away_until = time.monotonic() + REDIS_BACKOFF
        return self._hit_memory(counted)

    def _hit_redis(self, counted: Counted) -> int:
        keys = [self.storage.prefixed_key(item.key_for(*ids)) for item, ids in counted]
        args = [n for item, _ in counted for n in (item.amount, item.get_expiry())]
        return int(self.script(keys=keys, args=args))

    def _hit_memory(self, counted: Counted) -> int:
        if self.memory is None:  # made on first need: MemoryStorage starts a timer thread
            self.memory = FixedWindowRateLimiter(MemoryStorage())
        for item, ids in counted:
            if not self.memory.hit(item, *ids):
                reset = self.memory.get_window_stats(item, *ids).reset_time
                return max(1, math.ceil(reset - time.time()))
        return 0

    def close(self) -> None:
        if self.redis:
            self.storage.get_connection().connection_pool.disconnect()


def client_ip() -> str:
    # remote_addr is the proxy's address unless PROXY_FIX trusts X-Forwarded-For.
    return request.remote_addr or "unknown"


def retry_after(response: Response) -> Response:
    """Tell a limited client when to come back (Retry-After, in seconds)."""
    if response.status_code == 429 and "Retry-After" not in response.headers:
        current = limiter().current_limit
        if current is not None and current.breached:
            response.headers["Retry-After"] = str(max(1, current.reset_at - int(time.time())))
    return response
