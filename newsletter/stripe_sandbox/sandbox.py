"""`Sandbox`: the Stripe sandbox as a test or `newsletter dev` holds it."""
from __future__ import annotations

import json
import os
import threading
import time

from werkzeug.serving import WSGIRequestHandler, make_server

from newsletter.stripe_sandbox import cards, checkout, clock, events, invoices, portal, state
from newsletter.stripe_sandbox.errors import StripeError, no_such
from newsletter.stripe_sandbox.server import SandboxApp
from newsletter.stripe_sandbox.store import Settings, Store

DAY = 86400
AFTER_FAILED_RETRIES = ("canceled", "unpaid", "past_due")


class QuietHandler(WSGIRequestHandler):
    """No access log: a test run or `newsletter dev` has enough output."""

    def log_request(self, code="-", size="-") -> None:
        pass


class Sandbox:
    """A Stripe-compatible API, hosted pages and webhooks on loopback, with test controls."""

    def __init__(self, secret_key: str = "sk_test_sandbox", webhook_secret: str | None = None,
                 webhook_url: str | None = None, retry_delays=(1, 5, 30, 120),
                 payment_retry_days=(3, 5, 7), after_failed_retries: str = "canceled",
                 delivery_order: str = "created", delivery_timeout: float = 10,
                 state_file: str | os.PathLike | None = None) -> None:
        if after_failed_retries not in AFTER_FAILED_RETRIES:
            raise ValueError(f"after_failed_retries must be one of {AFTER_FAILED_RETRIES}")
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret or events.new_secret()
        self.webhooks = events.Webhooks(retry_delays, delivery_order, delivery_timeout,
                                        on_delivered=self._delivered)
        self.store = Store(Settings(tuple(payment_retry_days), after_failed_retries),
                           publish=self.webhooks.publish, endpoint_count=self.webhooks.count_for)
        self.state_file = state.StateFile(state_file) if state_file else None
        if self.state_file is not None:   # without one the sandbox lives in memory only
            self.state_file.load(self.store)
            self.store.persist = self.state_file.save
        self.url: str | None = None
        self._endpoint_id: str | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        if webhook_url:
            self.set_webhook(webhook_url)

    # ------------------------------------------------------------ running

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a daemon thread; the base URL (http://host:port)."""
        self._server = make_server(host, port, SandboxApp(self), threaded=True,
                                   request_handler=QuietHandler)
        self.url = f"http://{host}:{self._server.port}"
        with self.store.transaction() as store:   # a restored state was served elsewhere
            state.rebase(store, self.url)
        self.webhooks.start()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="stripe-sandbox-http", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None
        self.webhooks.stop()

    def __enter__(self) -> Sandbox:
        if self.url is None:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ------------------------------------------------------------ webhooks

    def set_webhook(self, url: str, secret: str | None = None) -> str:
        """Send events to `url`, signed with `secret` (default: webhook_secret); the secret."""
        if self._endpoint_id is not None:
            self.webhooks.remove_endpoint(self._endpoint_id)
        endpoint = self.webhooks.add_endpoint({"url": url}, self.now(),
                                              secret or self.webhook_secret)
        self._endpoint_id = endpoint["id"]
        return endpoint["secret"]

    def wait_for_deliveries(self, timeout: float = 10) -> None:
        """Block until every queued event was delivered or given up; TimeoutError otherwise."""
        self.webhooks.wait(timeout)

    @property
    def deliveries(self) -> list[events.Delivery]:
        """(event_id, event_type, http_status, attempt) for every attempt so far."""
        return self.webhooks.attempts()

    def events(self, type: str | None = None) -> list[dict]:
        """Copies of the events raised so far, oldest first."""
        with self.store.transaction() as store:
            return [store.view(event) for event in store.events
                    if type is None or event["type"] == type]

    def signed_event(self, event_id: str, secret: str | None = None) -> tuple[bytes, str]:
        """An event's JSON body and a Stripe-Signature for it (now), to post by hand:
        with Flask's test client, twice, or out of order."""
        payload = json.dumps(self.get(event_id), indent=2).encode()
        return payload, events.sign(payload, secret or self.webhook_secret, int(time.time()))

    def _delivered(self, event_id: str) -> None:
        with self.store.transaction() as store:
            event = store.objects[event_id]
            event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)

    # ------------------------------------------------------------ test controls

    def now(self) -> int:
        return self.store.now()

    def get(self, object_id: str) -> dict:
        """A copy of any object by id."""
        with self.store.transaction() as store:
            if object_id not in store.objects:
                raise StripeError(f"No such object: '{object_id}'", status=404,
                                  code="resource_missing", param="id")
            return store.view(store.objects[object_id])

    def pay_checkout(self, session_id: str, card: str = cards.GOOD_CARD,
                     email: str | None = None) -> dict:
        """What the hosted page's Pay button does; CardDeclined when the card is refused."""
        with self.store.transaction() as store:
            return store.view(checkout.pay(store, session_id, card, email))

    def advance_clock(self, days: float = 0, seconds: float = 0, until: int | None = None) -> int:
        """Move sandbox time forward (or to `until`); renewals, retries, trial ends due happen."""
        with self.store.transaction() as store:
            return clock.advance(store, int(days * DAY + seconds), until)

    def fail_next_renewals(self, customer_or_subscription_id: str, count: int | None = None) -> None:
        """Make the next `count` charges fail (None: all, until set_card gives a new card)."""
        with self.store.transaction() as store:
            obj = store.objects.get(customer_or_subscription_id)
            if obj is None or obj["object"] not in ("customer", "subscription"):
                raise no_such("customer or subscription", customer_or_subscription_id)
            invoices.force_failures(store, customer_or_subscription_id, count)

    def set_card(self, customer_id: str, card: str) -> dict:
        """Give the customer a new card, as the portal does (an open invoice is paid with it)."""
        with self.store.transaction() as store:
            return store.view(portal.update_card(store, customer_id, card))
