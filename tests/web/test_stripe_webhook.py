"""POST /stripe/webhook: signatures checked, each event id taken once, work queued after commit."""
from __future__ import annotations

import json
import time

import pytest
import stripe
from sqlalchemy import select

from newsletter import db
from newsletter.models import StripeEvent
from tests.web.signups import published

SECRET = "whsec_test_secret"


@pytest.fixture
def app_config(app_config):
    # The intake makes no call to Stripe, so the API address is never used here.
    return app_config | {"STRIPE_SECRET_KEY": "sk_test_unused", "STRIPE_WEBHOOK_SECRET": SECRET,
                         "STRIPE_API_BASE": "http://127.0.0.1:9"}


def payload(event_id: str = "evt_1", kind: str = "customer.subscription.updated") -> bytes:
    obj = {"object": "subscription", "id": "sub_1", "customer": "cus_1", "metadata": {"reader_id": "r1"}}
    return json.dumps({"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}).encode()


def signed(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    signature = stripe.WebhookSignature._compute_signature(f"{at}.{body.decode()}", secret)
    return f"t={at},v1={signature}"


def post(client, body: bytes, header: str | None):
    headers = {"Content-Type": "application/json"} | ({"Stripe-Signature": header} if header else {})
    return client.post("/stripe/webhook", data=body, headers=headers)


def test_a_signed_event_is_taken_and_its_sync_queued(app, client, broker):
    response = post(client, payload(), signed(payload()))
    assert response.status_code == 200
    assert response.get_json() == {"received": True, "duplicate": False}
    assert published(broker) == [("memberships.sync", ["evt_1", "sub_1", "r1"])]


def test_a_repeated_event_is_answered_but_queues_nothing_more(app, client, broker):
    for _ in range(3):
        assert post(client, payload(), signed(payload())).status_code == 200
    assert len(published(broker)) == 1
    with app.app_context():
        assert db.session().scalars(select(StripeEvent.id)).all() == ["evt_1"]


@pytest.mark.parametrize("header", [
    None, "", "t=1,v1=abc", "garbage", signed(payload(), secret="whsec_other"),
    signed(payload(), at=int(time.time()) - 301),  # outside the 5-minute tolerance
])
def test_forged_missing_or_stale_signatures_are_refused(app, client, broker, header):
    response = post(client, payload(), header)
    assert response.status_code == 400
    assert "invalid signature" in response.get_json()["error"]["message"]
    assert published(broker) == []
    with app.app_context():
        assert db.session().scalars(select(StripeEvent.id)).all() == []


def test_a_body_changed_after_signing_is_refused(client, broker):
    header = signed(payload("evt_1"))
    assert post(client, payload("evt_2"), header).status_code == 400
    assert published(broker) == []


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"no": "id"}', b"\xff\xfe"])
def test_signed_bodies_that_are_not_events_are_refused(client, broker, body):
    at = int(time.time())
    header = f"t={at},v1={stripe.WebhookSignature._compute_signature(f'{at}.' + body.decode('latin-1'), SECRET)}"
    assert post(client, body, header).status_code == 400
    assert published(broker) == []


def test_no_csrf_token_is_needed(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    assert post(client, payload(), signed(payload())).status_code == 200
