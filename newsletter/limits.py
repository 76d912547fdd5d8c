"""Rate limits on the sign-up routes (Flask-Limiter), per client IP and per address.

Counters live in the app's Redis, so every gunicorn worker and every web host shares
them. Each app gets a Limiter of its own (tests build many apps in one process); the
sign-up views are wrapped when the web layer calls `limit_signups`.

Configuration: RATELIMIT_ENABLED, SIGNUP_LIMIT_PER_IP, SIGNUP_LIMIT_PER_ADDRESS (limit
strings such as "10 per minute; 100 per hour"), RATELIMIT_STORAGE_URI, and any other
RATELIMIT_* key Flask-Limiter reads (RATELIMIT_STRATEGY, ...).
"""
from __future__ import annotations

import time

from collections.abc import Callable

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter

from newsletter.addresses import email_hash

TOO_MANY = "Too many sign-ups from here; please try again later."


def init_app(app: Flask) -> None:
    limiter = Limiter(
        key_func=client_ip,
        storage_uri=storage_uri(app.config),
        # Redis socket timeouts keep a hung Redis from hanging sign-ups.
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        # A Redis outage must not turn sign-ups into 500s: count in process memory until
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
    """Drop the limiter's Redis connections (tests, and processes that fork after using it)."""
    ext = limiter(app)
    client = getattr(ext.storage, "storage", None) if ext.enabled else None  # limits' RedisStorage
    if client is not None:
        client.connection_pool.disconnect()


def limit_signups(app: Flask, endpoints: list[str], address: Callable[[], str | None]) -> None:
    """Put the per-IP and per-address limits on the sign-up views; all of them share both.

    `address` gives the normalised address a request signs up, or None when it has no
    valid one: such requests count against their IP only.
    """
    def address_key() -> str:
        return email_hash(address())

    ext = limiter(app)
    per_ip = ext.shared_limit(lambda: current_app.config["SIGNUP_LIMIT_PER_IP"],
                              scope="signup-ip", methods=["POST"], error_message=TOO_MANY)
    per_address = ext.shared_limit(
        lambda: current_app.config["SIGNUP_LIMIT_PER_ADDRESS"], scope="signup-address",
        key_func=address_key, exempt_when=lambda: address() is None,
        methods=["POST"], error_message=TOO_MANY)
    for endpoint in endpoints:
        app.view_functions[endpoint] = per_ip(per_address(app.view_functions[endpoint]))


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
