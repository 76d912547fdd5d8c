"""Rate limits: the sign-up routes' own, per client IP and per address, and Flask-Limiter
for the app's other limited routes (the console's sign-in).

Counters live in the app's Redis, so every gunicorn worker and every web host shares
them. Each app gets limiters of its own (tests build many apps in one process); the
sign-up views are wrapped when the web layer calls `limit_signups`.

The sign-up routes are the busiest public POSTs: a sign-up is counted against its limits
and queued for the worker in one Redis round trip (newsletter.signup_gate: a Lua script
over fixed-window counters, the strategy Flask-Limiter used for them, under the same
`LIMITS:` keys). Flask-Limiter had spent two to three round trips and about 0.5 ms of
CPU on them per sign-up (docs/performance.md).

Configuration: RATELIMIT_ENABLED, SIGNUP_LIMIT_PER_IP, SIGNUP_LIMIT_PER_ADDRESS (limit
strings such as "10 per minute; 100 per hour"), RATELIMIT_STORAGE_URI, and any other
RATELIMIT_* key Flask-Limiter reads for the routes it limits.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from werkzeug.exceptions import HTTPException, TooManyRequests

from newsletter.addresses import email_hash
from newsletter.signup_gate import REDIS_TIMEOUTS, Counted, SignupGate

TOO_MANY = "Too many sign-ups from here; please try again later."
GATE = "newsletter.signup_gate"
COUNTED = "newsletter.signup_counted"  # in the WSGI environ: this request has been counted


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
    app_wide = app.config.get("RATELIMIT_DEFAULT") or app.config.get("RATELIMIT_APPLICATION")
    if limiter.enabled and not app_wide:
        # Flask-Limiter checks application-wide and default limits in a hook that every
        # request pays, about 0.15 ms of CPU (a quarter to a third of a bare GET /healthz).
        # We set neither kind, and the routes it limits (the console's sign-in) are checked
        # by their decorator when their view runs: without such limits the hook does nothing.
        app.before_request_funcs[None].remove(limiter._check_request_limit)
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
    if ext.enabled and isinstance(ext.storage, RedisStorage):
        ext.storage.get_connection().connection_pool.disconnect()
    if GATE in app.extensions:
        gate(app).close()


def limit_signups(app: Flask, endpoints: list[str], address: Callable[[], str | None]) -> None:
    """Put the per-IP and per-address limits on the sign-up views; all of them share both.

    A view queues its sign-up with `queue_signup`, which counts the request in the same
    round trip. A request the view answers otherwise (invalid, a bot's) is counted once
    the view returns, against its IP and, when `address` finds a valid one in it, its
    address; over a limit, it is answered 429 instead. Such answers change nothing, so
    counting them afterwards refuses exactly what counting first would. CSRFProtect runs
    before the view: a refused form counts against nothing.
    """
    app.extensions[GATE] = SignupGate.from_config(app.config)
    for endpoint in endpoints:
        app.view_functions[endpoint] = counted_afterwards(app.view_functions[endpoint], address)


def queue_signup(address: str, task_name: str, args: tuple) -> None:
    """Count this request against the sign-up limits of its IP and `address` and, when
    every limit allows it, queue `task_name(*args)`, in one Redis round trip.

    TooManyRequests (429, Retry-After) when a limit is exceeded: nothing is queued.
    QueueUnavailable when the broker does not take it.
    """
    request.environ[COUNTED] = True
    refuse_over_limit(gate().admit(signup_counters(address), task_name, args))


def counted_afterwards(view: Callable, address: Callable[[], str | None]) -> Callable:
    def count_unless_queued() -> None:
        if not request.environ.get(COUNTED):
            refuse_over_limit(gate().count(signup_counters(address())))

    @functools.wraps(view)
    def counted(*args, **kwargs):
        try:
            response = view(*args, **kwargs)
        except HTTPException:  # 413, 415, 429: answered without queuing too
            count_unless_queued()
            raise
        count_unless_queued()
        return response

    return counted


def signup_counters(address: str | None) -> Counted:
    """The counters this request counts against: its IP's, and its address's when it has one."""
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return []
    counted = [(item, ("signup-ip", client_ip())) for item in parsed(config["SIGNUP_LIMIT_PER_IP"])]
    if address is not None:
        digest = email_hash(address)
        counted += [(item, ("signup-address", digest)) for item in parsed(config["SIGNUP_LIMIT_PER_ADDRESS"])]
    return counted


def refuse_over_limit(wait: int) -> None:
    if wait:
        raise TooManyRequests(TOO_MANY, retry_after=wait)


def gate(app: Flask | None = None) -> SignupGate:
    return (app or current_app).extensions[GATE]


@functools.lru_cache(maxsize=64)
def parsed(limit_string: str) -> tuple[RateLimitItem, ...]:
    """The limits of a string such as "10 per minute; 100 per hour"."""
    return tuple(parse_many(limit_string))


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
