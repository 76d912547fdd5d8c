"""What a request tells about itself: the consent context, its JSON body, the address it signs up.

The domain never sees `request`; views hand it a ConsentContext built here.
"""
from __future__ import annotations

import json
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import HTTPException

from newsletter import addresses
from newsletter.consent import ConsentContext

# Column sizes of ConsentRecord: longer values are cut, not refused (they are evidence,
# not input the reader typed).
MAX_IP, MAX_USER_AGENT, MAX_PAGE, MAX_ARTICLE = 64, 500, 1000, 120


class InvalidJson(ValueError):
    """The body is not one JSON document."""


def consent_context(source: str, page: Any = None, article: Any = None) -> ConsentContext:
    """The context of this request; `page` falls back to the Referer header."""
    return ConsentContext(
        ip=(request.remote_addr or "")[:MAX_IP],
        user_agent=request.user_agent.string[:MAX_USER_AGENT],
        page=_text(page or request.referrer)[:MAX_PAGE],
        article=_text(article)[:MAX_ARTICLE],
        source=source,
    )


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def json_body() -> Any:
    """The request's JSON document, read once (at most SIGNUP_MAX_BYTES); InvalidJson if not."""
    body = _once("newsletter.json_body", _parse_json)
    if isinstance(body, InvalidJson):
        raise body
    return body


def _once(key: str, compute):
    # Kept in the WSGI environ rather than `g`: it belongs to this request, and an app
    # context (and its `g`) may outlive one request, as in tests.
    if key not in request.environ:
        request.environ[key] = compute()
    return request.environ[key]


def _parse_json() -> Any:
    request.max_content_length = current_app.config["SIGNUP_MAX_BYTES"]
    try:
        return json.loads(request.get_data(cache=True))
    # Deeply nested arrays exhaust the decoder's recursion limit rather than failing to parse.
    except (ValueError, RecursionError) as error:
        return InvalidJson(f"The body is not valid JSON: {error}"[:200])


def submitted_address() -> str | None:
    """The normalised address this sign-up request carries, or None when it has no valid one.

    Used by the per-address rate limit before the view runs, so it never raises.
    """
    return _once("newsletter.submitted_address", lambda: _normalised(_raw_address()))


def _raw_address() -> Any:
    try:
        if request.is_json:
            body = json_body()
            return body.get("email") if isinstance(body, dict) else None
        return request.form.get("email")
    except (InvalidJson, HTTPException):  # HTTPException: a body over the size limits
        return None


def _normalised(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    try:
        return addresses.normalise(raw)
    except addresses.InvalidEmail:
        return None


def cookie(cookies, name: str) -> str:
    """A cookie's value, '' for none (werkzeug's `get` makes an exception for each one missing,
    which a page view asking for five cookies pays five times)."""
    return cookies[name] if name in cookies else ""
