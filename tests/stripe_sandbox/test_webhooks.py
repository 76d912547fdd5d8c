"""Webhooks: signed as Stripe signs, delivered in order, retried, given up."""
from __future__ import annotations

import json
import socket

import pytest
import stripe

from tests.stripe_sandbox.conftest import WEBHOOK_SECRET, received_events
from tests.stripe_sandbox.receiver import WebhookReceiver


def test_signature_verifies_with_stripe_python(sandbox, receiver, paid_subscription):
    paid_subscription()
    sandbox.wait_for_deliveries()
    assert receiver.received
    for headers, body in receiver.received:
        event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], WEBHOOK_SECRET)
        assert event["object"] == "event" and event["livemode"] is False
        assert headers["Content-Type"].startswith("application/json")
    headers, body = receiver.received[0]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_wrong")


def test_events_arrive_in_creation_order(sandbox, receiver, paid_subscription):
    paid_subscription()
    sandbox.wait_for_deliveries()
    assert [e["id"] for e in received_events(receiver)] == [e["id"] for e in sandbox.events()]
    types = [e["type"] for e in received_events(receiver)]
    assert types.index("checkout.session.completed") < types.index("customer.subscription.created")
    assert types.index("customer.subscription.created") < types.index("invoice.paid")
    assert all(status == 200 for _, _, status, _ in sandbox.deliveries)


def test_event_payload_shape(sandbox, receiver, paid_subscription):
    _, sub_id = paid_subscription()
    sandbox.wait_for_deliveries()
    created = next(e for e in received_events(receiver)
                   if e["type"] == "customer.subscription.created")
    assert created["id"].startswith("evt_") and created["api_version"] == "2026-10-28.endive"
    assert created["data"]["object"]["id"] == sub_id and created["pending_webhooks"] == 1
    assert set(created["request"]) == {"id", "idempotency_key"}
    stored = sandbox.events("customer.subscription.created")[0]
    assert stored["pending_webhooks"] == 0


def test_a_500_is_retried_until_a_200(make_sandbox, receiver):
    receiver.statuses = [500, 500]
    sandbox = make_sandbox(retry_delays=(0.05, 0.1, 0.1))
    api = stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url})
    api.v1.products.create(params={"name": "Membership"})
    sandbox.wait_for_deliveries()
    event_id = sandbox.events()[0]["id"]
    assert sandbox.deliveries == [(event_id, "product.created", 500, 1),
                                  (event_id, "product.created", 500, 2),
                                  (event_id, "product.created", 200, 3)]
    assert len({body for _, body in receiver.received}) == 1    # the same event each time


def test_delivery_gives_up_after_the_last_retry(make_sandbox, receiver):
    receiver.statuses = [503] * 10
    sandbox = make_sandbox(retry_delays=(0.01, 0.01))
    sandbox.set_webhook(receiver.url)
    stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url}
                        ).v1.customers.create(params={"email": "a@example.com"})
    sandbox.wait_for_deliveries()
    assert [attempt for *_, attempt in sandbox.deliveries] == [1, 2, 3]
    assert sandbox.events()[0]["pending_webhooks"] == 1


def test_an_endpoint_that_is_down_gets_no_status(make_sandbox):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    sandbox = make_sandbox(retry_delays=(0.01,))
    sandbox.set_webhook(f"http://127.0.0.1:{closed_port}/hook")
    stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url}
                        ).v1.customers.create(params={"email": "a@example.com"})
    sandbox.wait_for_deliveries()
    assert [(status, attempt) for _, _, status, attempt in sandbox.deliveries] == [(None, 1),
                                                                                  (None, 2)]


def test_set_webhook_with_its_own_secret(sandbox, receiver, api):
    with WebhookReceiver() as other:
        secret = sandbox.set_webhook(other.url, secret="whsec_other")
        api.v1.products.create(params={"name": "Membership"})
        sandbox.wait_for_deliveries()
    assert secret == "whsec_other" and receiver.received == []
    headers, body = other.received[0]
    assert stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_other")


def test_webhook_endpoints_api(sandbox, receiver, api):
    with WebhookReceiver() as other:
        endpoint = api.v1.webhook_endpoints.create(params={
            "url": other.url, "enabled_events": ["customer.created"]})
        assert endpoint["id"].startswith("we_") and endpoint["secret"].startswith("whsec_")
        api.v1.products.create(params={"name": "Membership"})
        api.v1.customers.create(params={"email": "a@example.com"})
        sandbox.wait_for_deliveries()
        assert [json.loads(body)["type"] for _, body in other.received] == ["customer.created"]
        headers, body = other.received[0]
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], endpoint["secret"])
        assert "secret" not in api.v1.webhook_endpoints.retrieve(endpoint["id"])
        assert len(api.v1.webhook_endpoints.list().data) == 2
        assert api.v1.webhook_endpoints.delete(endpoint["id"])["deleted"] is True
    assert len(receiver.received) == 2


def test_reversed_delivery_order(make_sandbox, receiver):
    sandbox = make_sandbox(delivery_order="reversed")
    api = stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url})
    session = api.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer_email": "a@example.com", "line_items": [
            {"price": api.v1.prices.create(params={
                "product": api.v1.products.create(params={"name": "M"})["id"],
                "unit_amount": 100, "currency": "eur",
                "recurring": {"interval": "month"}})["id"]}]})
    sandbox.pay_checkout(session["id"])
    sandbox.wait_for_deliveries()
    types = [e["type"] for e in received_events(receiver)]
    assert types.index("invoice.paid") < types.index("checkout.session.completed")


def test_wait_for_deliveries_times_out(make_sandbox, receiver):
    receiver.statuses = [500]
    sandbox = make_sandbox(retry_delays=(30,))
    stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url}
                        ).v1.products.create(params={"name": "Membership"})
    with pytest.raises(TimeoutError):
        sandbox.wait_for_deliveries(timeout=0.3)


def test_a_handler_may_call_the_api_back(receiver, make_sandbox):
    """As our webhook view does: re-fetch the subscription while the delivery waits."""
    fetched = []
    sandbox = make_sandbox()
    api = stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url})

    def refetch(body):
        event = json.loads(body)
        if event["type"] == "checkout.session.completed":
            sub = api.v1.subscriptions.retrieve(event["data"]["object"]["subscription"])
            fetched.append(sub["status"])

    receiver.on_event = refetch
    price = api.v1.prices.create(params={
        "product": api.v1.products.create(params={"name": "M"})["id"], "unit_amount": 100,
        "currency": "eur", "recurring": {"interval": "month"}})
    session = api.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer_email": "a@example.com",
        "line_items": [{"price": price["id"]}]})
    sandbox.pay_checkout(session["id"])
    sandbox.wait_for_deliveries()
    assert fetched == ["active"]


def test_signed_event_for_posting_by_hand(sandbox, api):
    api.v1.products.create(params={"name": "Membership"})
    event_id = sandbox.events()[0]["id"]
    payload, header = sandbox.signed_event(event_id)
    event = stripe.Webhook.construct_event(payload, header, WEBHOOK_SECRET)
    assert event["id"] == event_id and event["type"] == "product.created"
