"""Which subscription a Stripe event points at, and taking each event id once."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from newsletter import stripe_events
from newsletter.models import StripeEvent
from tests.web.signups import published

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def event(kind: str, obj: dict, event_id: str = "evt_1") -> dict:
    return {"id": event_id, "object": "event", "type": kind, "data": {"object": obj}}


def test_subscription_events_point_at_themselves_and_name_our_reader():
    obj = {"object": "subscription", "id": "sub_1", "metadata": {"reader_id": "r1"}}
    assert stripe_events.refs_of(event("customer.subscription.updated", obj)) == stripe_events.Refs("sub_1", "r1")


def test_checkout_session_points_at_its_subscription_and_client_reference():
    obj = {"object": "checkout.session", "subscription": "sub_2", "client_reference_id": "r2"}
    assert stripe_events.refs_of(event("checkout.session.completed", obj)) == stripe_events.Refs("sub_2", "r2")


def test_invoices_point_at_the_subscription_in_either_api_shape():
    old = {"object": "invoice", "subscription": "sub_3"}
    new = {"object": "invoice", "parent": {"subscription_details": {"subscription": "sub_4"}}}
    assert stripe_events.refs_of(event("invoice.paid", old)).subscription_id == "sub_3"
    assert stripe_events.refs_of(event("invoice.payment_failed", new)).subscription_id == "sub_4"


def test_unhandled_types_and_objects_without_a_subscription_point_nowhere():
    assert stripe_events.refs_of(event("customer.created", {"object": "customer", "id": "cus_1"})) is None
    one_off = {"object": "checkout.session", "subscription": None, "client_reference_id": "r"}
    assert stripe_events.refs_of(event("checkout.session.completed", one_off)) is None
    assert stripe_events.refs_of({"id": "evt_x", "type": "invoice.paid"}) is None


def test_an_event_id_is_taken_once_and_queues_one_sync(session, broker):
    obj = {"object": "subscription", "id": "sub_1", "metadata": {}}
    assert stripe_events.receive(session, event("customer.subscription.created", obj), NOW) is True
    session.commit()
    assert stripe_events.receive(session, event("customer.subscription.created", obj), NOW) is False
    session.commit()
    assert published(broker) == [("memberships.sync", ["evt_1", "sub_1", None])]
    assert session.scalars(select(StripeEvent.id)).all() == ["evt_1"]


def test_an_event_with_nothing_to_do_is_marked_processed(session, broker):
    stripe_events.receive(session, event("customer.created", {"object": "customer"}, "evt_9"), NOW)
    session.commit()
    assert published(broker) == []
    assert session.get(StripeEvent, "evt_9").processed_at == NOW
