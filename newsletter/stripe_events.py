"""Stripe webhook events: each id taken once, then "look again" work queued for it.

The view verifies the signature (newsletter.billing); this module stores the event id
under its unique key and queues `memberships.sync` for the subscription the event is
about. The event's own copy of the object is never written anywhere: it may be stale
by the time it arrives (events come late, twice, and in any order).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from newsletter import queue
from newsletter.db import insert_ignoring_duplicate
from newsletter.models import StripeEvent

HANDLED = frozenset({
    "checkout.session.completed",
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "invoice.paid", "invoice.payment_failed",
})


@dataclass(frozen=True)
class Refs:
    """What an event points at: the subscription to fetch again, and our reader if named."""

    subscription_id: str
    reader_id: str | None = None


def receive(session: Session, event: dict, now: datetime) -> bool:
    """Take a verified event in; False when its id was seen before (nothing is queued again)."""
    if not insert_ignoring_duplicate(session, StripeEvent,
                                     {"id": event["id"][:255], "type": str(event.get("type"))[:100],
                                      "received_at": now}, "id"):
        return False
    refs = refs_of(event)
    if refs is None:
        mark_processed(session, event["id"], now)
    else:
        queue.enqueue(session, "memberships.sync", event["id"], refs.subscription_id, refs.reader_id)
    return True


def refs_of(event: dict) -> Refs | None:
    """The subscription an event of a handled type is about, or None (nothing to do)."""
    if event.get("type") not in HANDLED:
        return None
    obj = (event.get("data") or {}).get("object") or {}
    kind = obj.get("object")
    if kind == "checkout.session":
        return _refs(obj.get("subscription"), obj.get("client_reference_id"))
    if kind == "subscription":
        return _refs(obj.get("id"), (obj.get("metadata") or {}).get("reader_id"))
    if kind == "invoice":
        return _refs(_invoice_subscription(obj))
    return None


def _refs(subscription, reader_id=None) -> Refs | None:
    if isinstance(subscription, dict):  # an expanded object
        subscription = subscription.get("id")
    if not isinstance(subscription, str) or not subscription:
        return None
    return Refs(subscription, reader_id if isinstance(reader_id, str) and reader_id else None)


def _invoice_subscription(invoice: dict):
    # Newer API versions move it under parent.subscription_details.
    details = ((invoice.get("parent") or {}).get("subscription_details") or {})
    return details.get("subscription") or invoice.get("subscription")


def mark_processed(session: Session, event_id: str, now: datetime) -> None:
    session.execute(update(StripeEvent).where(StripeEvent.id == event_id).values(processed_at=now))
