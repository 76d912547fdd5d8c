"""The WSGI application: Stripe's API conventions around the route handlers.

API requests need `Authorization: Bearer <secret key>` (or the key as basic-auth user),
take form-encoded parameters (query string for GET and DELETE), honour `Idempotency-Key`
on POST and answer JSON, errors in Stripe's `{"error": {...}}` shape.
"""
from __future__ import annotations

import base64
import hashlib
import json

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from newsletter.stripe_sandbox import api, controls, pages
from newsletter.stripe_sandbox.errors import (
    StripeError, authentication_error, idempotency_error, unrecognized_url)
from newsletter.stripe_sandbox.params import parse_form, validate
from newsletter.stripe_sandbox.store import API_VERSION, RequestInfo, Store

NO_KEY = ("You did not provide an API key. You need to provide your API key in the "
          "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
          "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
          "or we can help at https://support.stripe.com/.")


def url_map() -> Map:
    return Map([rule.empty() for routes in (api.routes, pages.routes, controls.routes)
                for rule in routes.rules], strict_slashes=False)


class SandboxApp:
    """WSGI callable; `sandbox` gives the handlers its store, webhooks and controls."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.url_map = url_map()
        self.replies: dict[str, tuple[str, int, bytes]] = {}   # idempotency key → reply

    def __call__(self, environ, start_response):
        request = Request(environ)
        return self.dispatch(request)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            route, args = adapter.match()
        except (NotFound, MethodNotAllowed):
            if request.path.startswith("/v1/"):
                return json_error(unrecognized_url(request.method, request.path))
            return Response("Not found", status=404)
        except HTTPException as error:
            return error.get_response()
        if route.kind == "page":
            return route.handler(self.sandbox, request, **args)
        if route.kind == "control":
            return controls.answer(self.sandbox, route, request, args)
        return self.api_call(route, request, args)

    def api_call(self, route, request: Request, args: dict) -> Response:
        request_info = RequestInfo(Store.new_id("req_", 14), request.headers.get("Idempotency-Key"))
        try:
            self.authenticate(request)
            params = validate(parse_form(form_pairs(request)), route.schema)
        except StripeError as error:
            return with_headers(json_error(error), request, request_info)
        store = self.sandbox.store
        with store.transaction(request_info):
            key = request_info.idempotency_key if request.method == "POST" else None
            replayed = key is not None and key in self.replies
            if not replayed:
                reply = self.run(route, params, args)
                if key is not None:
                    self.replies[key] = (fingerprint(request), *reply)
            response = self.replay(key, request) if replayed else Response(
                reply[1], status=reply[0], content_type="application/json")
        return with_headers(response, request, request_info)

    def run(self, route, params: dict, args: dict) -> tuple[int, bytes]:
        try:
            obj = route.handler(self.sandbox, params, **args)
            body = self.sandbox.store.view(obj, params.get("expand", []))
            return 200, json.dumps(body, indent=2).encode()
        except StripeError as error:
            return error.status, json.dumps(error.body(), indent=2).encode()

    def replay(self, key: str, request: Request) -> Response:
        first_fingerprint, status, body = self.replies[key]
        if first_fingerprint != fingerprint(request):
            return json_error(idempotency_error(key))
        response = Response(body, status=status, content_type="application/json")
        response.headers["Idempotent-Replayed"] = "true"
        return response

    def authenticate(self, request: Request) -> None:
        key = presented_key(request.headers.get("Authorization", ""))
        if not key:
            raise authentication_error(NO_KEY)
        if key != self.sandbox.secret_key:
            raise authentication_error(f"Invalid API Key provided: {key[:8]}****{key[-4:]}")


def presented_key(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        decoded = base64.b64decode(value.strip() + "==").decode("utf-8", "replace")
        return decoded.partition(":")[0] or None
    return None


def form_pairs(request: Request) -> list[tuple[str, str]]:
    source = request.form if request.method == "POST" else request.args
    return list(source.items(multi=True))


def fingerprint(request: Request) -> str:
    pairs = sorted(form_pairs(request))
    return hashlib.sha256(repr((request.method, request.path, pairs)).encode()).hexdigest()


def json_error(error: StripeError) -> Response:
    return Response(json.dumps(error.body(), indent=2), status=error.status,
                    content_type="application/json")


def with_headers(response: Response, request: Request, info: RequestInfo) -> Response:
    response.headers["Request-Id"] = info.id
    response.headers["Stripe-Version"] = request.headers.get("Stripe-Version", API_VERSION)
    if info.idempotency_key:
        response.headers["Idempotency-Key"] = info.idempotency_key
    return response
