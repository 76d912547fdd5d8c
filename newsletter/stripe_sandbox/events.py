"""Webhook endpoints, and the thread that delivers events to them signed as Stripe signs.

Each event goes to every enabled endpoint that listens for its type, as a JSON POST with
`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload" under the endpoint's
secret>`. A non-2xx answer or a connection error is tried again after each of
`retry_delays` (real seconds) in turn, then given up. One thread delivers in creation
order (per batch, `order` may reverse or shuffle the events one change raised).
"""
from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
from typing import Callable, NamedTuple

from newsletter.stripe_sandbox.errors import StripeError, missing_parameter, no_such
from newsletter.stripe_sandbox.params import LIST, METADATA, STR

ENDPOINT_CREATE = {"url": STR, "enabled_events": [STR], "description": STR,
                   "metadata": METADATA, "api_version": STR, "expand": [STR]}
ENDPOINT_LIST = LIST
ORDERS = ("created", "reversed", "shuffled")


class Delivery(NamedTuple):
    event_id: str
    event_type: str
    http_status: int | None     # None: no answer (connection refused, timeout)
    attempt: int


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's signature header for a payload."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


class Webhooks:
    """Endpoints and the delivery queue, behind one condition."""

    def __init__(self, retry_delays=(1, 5, 30, 120), order: str = "created",
                 timeout: float = 10, on_delivered: Callable[[str], None] = lambda _: None):
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}")
        self.retry_delays = tuple(retry_delays)
        self.order = order
        self.timeout = timeout
        self.on_delivered = on_delivered
        self.endpoints: dict[str, dict] = {}
        self.deliveries: list[Delivery] = []
        self._secrets: dict[str, str] = {}
        self._queue: list[tuple] = []
        self._sequence = itertools.count()
        self._busy = 0
        self._stopping = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="stripe-sandbox-webhooks",
                                        daemon=True)

    # ------------------------------------------------------------ endpoints

    def add_endpoint(self, params: dict, created: int, secret: str | None = None) -> dict:
        if not params.get("url"):
            raise missing_parameter("url")
        if not params["url"].startswith(("http://", "https://")):
            raise StripeError(f"Invalid URL: {params['url']}", param="url", code="url_invalid")
        endpoint = {
            "id": "we_" + secrets.token_hex(12), "object": "webhook_endpoint",
            "api_version": params.get("api_version"), "application": None, "created": created,
            "description": params.get("description"),
            "enabled_events": params.get("enabled_events") or ["*"], "livemode": False,
            "metadata": params.get("metadata") or {}, "status": "enabled", "url": params["url"],
        }
        with self._condition:
            self.endpoints[endpoint["id"]] = endpoint
            self._secrets[endpoint["id"]] = secret or new_secret()
        return {**endpoint, "secret": self._secrets[endpoint["id"]]}

    def remove_endpoint(self, endpoint_id: str) -> dict:
        with self._condition:
            if endpoint_id not in self.endpoints:
                raise no_such("webhook_endpoint", endpoint_id)
            self._secrets.pop(endpoint_id)
            return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True,
                    **{"url": self.endpoints.pop(endpoint_id)["url"]}}

    def get_endpoint(self, endpoint_id: str) -> dict:
        with self._condition:
            if endpoint_id not in self.endpoints:
                raise no_such("webhook_endpoint", endpoint_id)
            return dict(self.endpoints[endpoint_id])

    def list_endpoints(self, limit: int = 10) -> dict:
        with self._condition:
            endpoints = [dict(endpoint) for endpoint in self.endpoints.values()][::-1]
        return {"object": "list", "data": endpoints[:limit], "has_more": len(endpoints) > limit,
                "url": "/v1/webhook_endpoints"}

    def attempts(self) -> list[Delivery]:
        with self._condition:
            return list(self.deliveries)

    def listening(self, event_type: str) -> list[str]:
        with self._condition:
            return [endpoint_id for endpoint_id, endpoint in self.endpoints.items()
                    if "*" in endpoint["enabled_events"] or event_type in endpoint["enabled_events"]]

    def count_for(self, event_type: str) -> int:
        return len(self.listening(event_type))

    # ------------------------------------------------------------ the queue

    def publish(self, events: list[dict]) -> None:
        """Queue one change's events for every endpoint that listens."""
        batch = list(events)
        if self.order == "reversed":
            batch.reverse()
        elif self.order == "shuffled":
            random.shuffle(batch)
        with self._condition:
            for event in batch:
                payload = json.dumps(event, indent=2).encode()
                for endpoint_id in self.listening(event["type"]):
                    self._push(time.monotonic(), event, payload, endpoint_id, 1)
            self._condition.notify_all()

    def _push(self, due: float, event: dict, payload: bytes, endpoint_id: str, attempt: int):
        heapq.heappush(self._queue, (due, next(self._sequence), event["id"], event["type"],
                                     payload, endpoint_id, attempt))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=self.timeout + 1)

    def wait(self, timeout: float = 10) -> None:
        """Block until nothing is queued or being delivered; TimeoutError otherwise."""
        with self._condition:
            if not self._condition.wait_for(lambda: not self._queue and not self._busy, timeout):
                raise TimeoutError(f"{len(self._queue)} webhook deliveries still pending")

    def _run(self) -> None:
        while (job := self._next_job()) is not None:
            try:
                self._deliver(*job)
            finally:
                with self._condition:
                    self._busy -= 1
                    self._condition.notify_all()

    def _next_job(self) -> tuple | None:
        with self._condition:
            while not self._stopping:
                if self._queue and self._queue[0][0] <= time.monotonic():
                    self._busy += 1
                    return heapq.heappop(self._queue)
                wait = self._queue[0][0] - time.monotonic() if self._queue else None
                self._condition.wait(wait)
            return None

    def _deliver(self, due, sequence, event_id, event_type, payload, endpoint_id, attempt):
        with self._condition:
            endpoint, secret = self.endpoints.get(endpoint_id), self._secrets.get(endpoint_id)
        if endpoint is None:
            return
        status = post(endpoint["url"], payload, sign(payload, secret, int(time.time())),
                      self.timeout)
        with self._condition:
            self.deliveries.append(Delivery(event_id, event_type, status, attempt))
            if status is not None and 200 <= status < 300:
                delivered = True
            else:
                delivered = False
                if attempt <= len(self.retry_delays):
                    due = time.monotonic() + self.retry_delays[attempt - 1]
                    self._push(due, {"id": event_id, "type": event_type}, payload,
                               endpoint_id, attempt + 1)
        if delivered:
            self.on_delivered(event_id)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Stripe counts a redirect as a failed delivery; so does the sandbox."""

    def redirect_request(self, *args, **kwargs):
        return None


# No proxies from the environment: endpoints are on this machine.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def post(url: str, payload: bytes, signature: str, timeout: float) -> int | None:
    """POST one event; the HTTP status, or None when nothing answered."""
    request = urllib.request.Request(url, data=payload, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature,
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    })
    try:
        with OPENER.open(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code
    except (urllib.error.URLError, OSError, ValueError):   # ValueError: no usable URL
        return None
