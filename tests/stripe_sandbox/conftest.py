"""Fixtures: a started sandbox, the real stripe-python client on it, a webhook receiver."""
from __future__ import annotations

import json

import pytest
import requests
import stripe

from newsletter.stripe_sandbox import Sandbox
from tests.stripe_sandbox.receiver import WebhookReceiver

SECRET_KEY = "sk_test_sandbox"
WEBHOOK_SECRET = "whsec_test_sandbox_secret"
GOOD_CARD = "4242424242424242"


@pytest.fixture
def receiver():
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def make_sandbox(receiver):
    """Start a sandbox delivering to `receiver`; each is stopped after the test."""
    started = []

    def make(**options) -> Sandbox:
        options.setdefault("retry_delays", (0.05, 0.05, 0.05))
        sandbox = Sandbox(SECRET_KEY, WEBHOOK_SECRET, receiver.url, **options)
        sandbox.start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox):
    return make_sandbox()


@pytest.fixture
def api(sandbox):
    return client(sandbox)


def client(sandbox: Sandbox) -> stripe.StripeClient:
    """stripe-python's own client, pointed at the sandbox."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": sandbox.url},
                               max_network_retries=0)


@pytest.fixture
def make_price(api):
    def make(unit_amount=500, interval="month", lookup_key=None, **extra):
        product = api.v1.products.create(params={"name": "Community membership"})
        params = {"product": product["id"], "unit_amount": unit_amount, "currency": "eur",
                  "recurring": {"interval": interval}, **extra}
        if lookup_key:
            params["lookup_key"] = lookup_key
        return api.v1.prices.create(params=params)
    return make


@pytest.fixture
def make_session(api, make_price):
    """An open subscription Checkout Session for a new price."""
    def make(**params):
        price = params.pop("price", None) or make_price()
        return api.v1.checkout.sessions.create(params={
            "mode": "subscription", "line_items": [{"price": price["id"], "quantity": 1}],
            "success_url": "http://127.0.0.1:9/welcome?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://127.0.0.1:9/membership", **params})
    return make


@pytest.fixture
def paid_subscription(sandbox, api, make_session):
    """A subscription paid through Checkout with a good card: (customer id, subscription id)."""
    def make(card=GOOD_CARD, **params):
        params.setdefault("customer_email", "reader@example.com")
        session = sandbox.pay_checkout(make_session(**params)["id"], card=card)
        return session["customer"], session["subscription"]
    return make


def event_types(sandbox, since: int = 0) -> list[str]:
    return [event["type"] for event in sandbox.events()[since:]]


def received_events(receiver) -> list[dict]:
    return [json.loads(body) for _, body in receiver.received]


def http():
    """A requests session that never follows redirects on its own."""
    session = requests.Session()
    session.trust_env = False
    return session
