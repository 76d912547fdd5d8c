"""Test controls over HTTP, under /_sandbox/ (no API key: the sandbox listens on loopback).

Each takes a form-encoded or JSON body and answers JSON; they call the same Sandbox
methods a Python test would.
"""
from __future__ import annotations

import json

from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from newsletter.stripe_sandbox.errors import StripeError
from newsletter.stripe_sandbox.routing import Route, Routes

routes = Routes("control")


class BadControl(StripeError):
    """A control was called with a missing or malformed value."""


def answer(sb, route: Route, request: Request, args: dict) -> Response:
    """JSON; or, for a form with a `next` field that succeeded, 303 to `next` (a page)."""
    params = control_params(request)
    try:
        body = route.handler(sb, params, **args)
        status = 200
    except StripeError as error:
        body, status = error.body(), error.status
    if status == 200 and str(params.get("next", "")).startswith("/_sandbox/"):
        return redirect(params["next"], 303)
    return Response(json.dumps(body, indent=2), status=status, content_type="application/json")


def control_params(request: Request) -> dict:
    if request.is_json:
        return request.get_json(silent=True) or {}
    return {**request.args.to_dict(), **request.form.to_dict()}


def number(params: dict, name: str, default: float | None = 0) -> float | None:
    value = params.get(name, default)
    try:
        return value if value is None else float(value)
    except (TypeError, ValueError):
        raise BadControl(f"{name} must be a number", param=name) from None


def required(params: dict, name: str) -> str:
    if not params.get(name):
        raise BadControl(f"Missing required param: {name}.", param=name)
    return str(params[name])


@routes.route("/_sandbox/clock", "GET")
def clock(sb, params):
    return {"now": sb.now()}


@routes.route("/_sandbox/clock/advance", "POST")
def advance_clock(sb, params):
    days = number(params, "days") + number(params, "hours") / 24
    until = number(params, "until", None)
    try:
        now = sb.advance_clock(days=days, seconds=number(params, "seconds"),
                               until=None if until is None else int(until))
    except ValueError as error:
        raise BadControl(str(error)) from None
    return {"now": now}


@routes.route("/_sandbox/customers/<id>/card", "POST")
def set_card(sb, params, id):
    return sb.set_card(id, required(params, "card"))


@routes.route("/_sandbox/fail_next_renewals", "POST")
def fail_next_renewals(sb, params):
    count = number(params, "count", None)
    object_id = required(params, "id")
    sb.fail_next_renewals(object_id, None if count is None else int(count))
    return {"id": object_id, "count": count}


@routes.route("/_sandbox/checkout/<id>/pay", "POST")
def pay_checkout(sb, params, id):
    return sb.pay_checkout(id, card=params.get("card", "4242424242424242"),
                           email=params.get("email"))


@routes.route("/_sandbox/webhook", "POST")
def set_webhook(sb, params):
    secret = sb.set_webhook(required(params, "url"), params.get("secret") or None)
    return {"url": params["url"], "secret": secret}


@routes.route("/_sandbox/deliveries", "GET")
def deliveries(sb, params):
    return {"data": [delivery._asdict() for delivery in sb.deliveries]}


@routes.route("/_sandbox/deliveries/wait", "POST")
def wait_for_deliveries(sb, params):
    try:
        sb.wait_for_deliveries(timeout=number(params, "timeout", 10))
    except TimeoutError as error:
        raise BadControl(str(error), status=504) from None
    return {"pending": 0, "delivered": len(sb.deliveries)}
