"""Subscriptions: created by Checkout, renewed by the clock, cancelled by API or portal.

Statuses follow Stripe's: trialing or active while paid; past_due after a failed renewal
while the charge is retried (Settings.payment_retry_days); then canceled (or unpaid, or
left past_due, as Settings.after_failed_retries says).
"""
from __future__ import annotations

import calendar
import copy
import datetime

from newsletter.stripe_sandbox import invoices
from newsletter.stripe_sandbox.errors import StripeError
from newsletter.stripe_sandbox.params import BOOL, LIST, METADATA, STR, merge_metadata, one_of
from newsletter.stripe_sandbox.store import Store

DAY = 86400
CANCELLATION = {"comment": STR, "feedback": STR}
SUBSCRIPTION_UPDATE = {"cancel_at_period_end": BOOL, "metadata": METADATA,
                       "cancellation_details": CANCELLATION, "expand": [STR]}
SUBSCRIPTION_CANCEL = {"cancellation_details": CANCELLATION, "invoice_now": BOOL,
                       "prorate": BOOL, "expand": [STR]}
STATUSES = ("active", "all", "canceled", "ended", "incomplete", "incomplete_expired",
            "past_due", "paused", "trialing", "unpaid")
SUBSCRIPTION_LIST = {**LIST, "customer": STR, "price": STR, "status": one_of(*STATUSES)}
LIVE = ("trialing", "active", "past_due")     # the statuses the clock renews


def add_interval(timestamp: int, interval: str, count: int, anchor_day: int | None = None) -> int:
    """One billing period later. Months keep the anchor's day of the month, clamped to the
    month's length (Jan 31 → Feb 28 → Mar 31), as Stripe's billing_cycle_anchor does."""
    if interval in ("day", "week"):
        return timestamp + count * DAY * (7 if interval == "week" else 1)
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    years, month = divmod(moment.month - 1 + count * (12 if interval == "year" else 1), 12)
    year = moment.year + years
    day = min(anchor_day or moment.day, calendar.monthrange(year, month + 1)[1])
    return int(moment.replace(year=year, month=month + 1, day=day).timestamp())


def period_end(sub: dict) -> int:
    return sub["items"]["data"][0]["current_period_end"]


def create_subscription(store: Store, customer: dict, price: dict, quantity: int,
                        metadata: dict, trial_days: int | None, sub_id: str | None = None) -> dict:
    """A paid (or trialing) subscription with its first invoice, as Checkout leaves it."""
    now = store.now()
    trial_end = now + trial_days * DAY if trial_days else None
    sub = store.add(_subscription(store, sub_id or store.new_id("sub_"), customer, metadata,
                                  trial_end))
    sub["items"]["data"].append(_item(store, sub, price, quantity, trial_end))
    amount = 0 if trial_end else price["unit_amount"] * quantity
    invoice = invoices.new_invoice(store, sub, "subscription_create", amount)
    sub["latest_invoice"] = invoice["id"]
    store.emit("customer.subscription.created", sub)
    store.emit("invoice.created", invoice)
    invoices.finalize(store, invoice)
    invoices.attempt_payment(store, invoice)
    return sub


def _subscription(store: Store, sub_id: str, customer: dict, metadata: dict,
                  trial_end: int | None) -> dict:
    now = store.now()
    return {
        "id": sub_id, "object": "subscription", "application": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": trial_end or now,
        # Flexible is the default for new subscriptions since API 2025-09-30.
        "billing_mode": {"flexible": {"proration_discounts": "included"}, "type": "flexible",
                         "updated_at": None},
        "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically", "created": now, "currency": None,
        "customer": customer["id"], "days_until_due": None,
        "default_payment_method": customer["invoice_settings"]["default_payment_method"],
        "description": None, "discounts": [], "ended_at": None,
        "items": {"object": "list", "data": [], "has_more": False, "total_count": 1,
                  "url": f"/v1/subscription_items?subscription={sub_id}"},
        "latest_invoice": None, "livemode": False, "metadata": dict(metadata),
        "pause_collection": None, "pending_update": None, "schedule": None,
        "start_date": now, "status": "trialing" if trial_end else "active",
        "test_clock": None, "trial_end": trial_end, "trial_start": now if trial_end else None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
    }


def _item(store: Store, sub: dict, price: dict, quantity: int, trial_end: int | None) -> dict:
    """The subscription's one item; since API 2025-03-31 the period dates live here."""
    sub["currency"] = price["currency"]
    now = store.now()
    return {
        "id": store.new_id("si_", 14), "object": "subscription_item", "created": now,
        "current_period_start": now, "current_period_end": trial_end or _next_period(now, price),
        "discounts": [], "metadata": {}, "price": copy.deepcopy(price), "quantity": quantity,
        "subscription": sub["id"], "tax_rates": [],
    }


def _next_period(start: int, price: dict, anchor: int | None = None) -> int:
    recurring = price["recurring"]
    anchor_day = anchor and datetime.datetime.fromtimestamp(anchor, datetime.timezone.utc).day
    return add_interval(start, recurring["interval"], recurring["interval_count"], anchor_day)


# ---------------------------------------------------------------- the clock's work

def renew(store: Store, sub: dict) -> None:
    """The period has ended: end it if asked to, else start the next one and charge for it."""
    if sub["cancel_at_period_end"]:
        end(store, sub, "cancellation_requested")
        return
    before = copy.deepcopy(sub)
    item = sub["items"]["data"][0]
    item["current_period_start"] = item["current_period_end"]
    item["current_period_end"] = _next_period(item["current_period_start"], item["price"],
                                              sub["billing_cycle_anchor"])
    _stop_retrying(store, sub)
    invoice = invoices.new_invoice(store, sub, "subscription_cycle",
                                   item["price"]["unit_amount"] * item["quantity"])
    sub["latest_invoice"] = invoice["id"]
    store.emit("invoice.created", invoice)
    invoices.finalize(store, invoice)
    _collect(store, sub, invoice, before)


def trial_warning_due(store: Store, sub: dict) -> int | None:
    """When customer.subscription.trial_will_end is due (3 days before), if not yet sent."""
    if sub["status"] != "trialing" or store.private[sub["id"]].get("trial_warned"):
        return None
    return max(sub["trial_start"], sub["trial_end"] - 3 * DAY)


def warn_trial_ending(store: Store, sub: dict) -> None:
    store.private[sub["id"]]["trial_warned"] = True
    store.emit("customer.subscription.trial_will_end", sub)


def retry(store: Store, sub: dict) -> None:
    """Smart Retries' next attempt on the open latest invoice."""
    _collect(store, sub, store.objects[sub["latest_invoice"]], copy.deepcopy(sub))


def pay_open_invoice(store: Store, sub: dict) -> None:
    """A new card was given: try the unpaid latest invoice of a past_due or unpaid subscription."""
    invoice = store.objects[sub["latest_invoice"]]
    if sub["status"] in ("past_due", "unpaid") and invoice["status"] == "open":
        _collect(store, sub, invoice, copy.deepcopy(sub))


def next_retry(store: Store, sub: dict) -> int | None:
    invoice = store.objects.get(sub["latest_invoice"] or "")
    if sub["status"] != "past_due" or invoice is None or invoice["status"] != "open":
        return None
    return invoice["next_payment_attempt"]


def _collect(store: Store, sub: dict, invoice: dict, before: dict) -> None:
    if invoices.attempt_payment(store, invoice):
        sub["status"] = "active"
    else:
        _after_failure(store, sub, invoice)
    if sub["status"] != "canceled":
        store.emit_changes("customer.subscription.updated", sub, before)


def _after_failure(store: Store, sub: dict, invoice: dict) -> None:
    delays = store.settings.payment_retry_days
    if invoice["attempt_count"] <= len(delays):
        sub["status"] = "past_due"
        invoice["next_payment_attempt"] = store.now() + delays[invoice["attempt_count"] - 1] * DAY
        return
    invoice["next_payment_attempt"] = None
    final = store.settings.after_failed_retries
    if final == "canceled":
        end(store, sub, "payment_failed")
    else:
        sub["status"] = final


def _stop_retrying(store: Store, sub: dict) -> None:
    old = store.objects.get(sub["latest_invoice"] or "")
    if old is not None and old["status"] == "open":
        old["next_payment_attempt"] = None


def end(store: Store, sub: dict, reason: str) -> None:
    """Cancel now: status canceled and customer.subscription.deleted."""
    now = store.now()
    sub.update(status="canceled", ended_at=now, canceled_at=sub["canceled_at"] or now,
               cancel_at_period_end=False)
    sub["cancellation_details"]["reason"] = reason
    _stop_retrying(store, sub)
    store.emit("customer.subscription.deleted", sub)


# ---------------------------------------------------------------- API operations

def update_subscription(store: Store, sub_id: str, params: dict) -> dict:
    sub = store.get(sub_id, "subscription")
    if sub["status"] == "canceled" and "cancel_at_period_end" in params:
        raise StripeError("A canceled subscription can only update its cancellation_details "
                          "and metadata.", param="cancel_at_period_end")
    before = copy.deepcopy(sub)
    if "cancel_at_period_end" in params:
        _set_cancel_at_period_end(store, sub, params["cancel_at_period_end"])
    if "metadata" in params:
        sub["metadata"] = merge_metadata(sub["metadata"], params["metadata"])
    sub["cancellation_details"].update(params.get("cancellation_details", {}))
    store.emit_changes("customer.subscription.updated", sub, before)
    return sub


def set_cancel_at_period_end(store: Store, sub: dict, wanted: bool) -> None:
    """What the portal's Cancel and Don't cancel buttons do."""
    before = copy.deepcopy(sub)
    _set_cancel_at_period_end(store, sub, wanted)
    store.emit_changes("customer.subscription.updated", sub, before)


def _set_cancel_at_period_end(store: Store, sub: dict, wanted: bool) -> None:
    if wanted == sub["cancel_at_period_end"]:
        return
    sub.update(cancel_at_period_end=wanted, cancel_at=period_end(sub) if wanted else None,
               canceled_at=store.now() if wanted else None)
    sub["cancellation_details"]["reason"] = "cancellation_requested" if wanted else None


def cancel_subscription(store: Store, sub_id: str, params: dict) -> dict:
    sub = store.get(sub_id, "subscription")
    if sub["status"] == "canceled":
        raise StripeError(f"This subscription has already been canceled: {sub_id}",
                          code="resource_missing", status=404, param="id")
    sub["cancellation_details"].update(params.get("cancellation_details", {}))
    sub["canceled_at"] = None
    end(store, sub, "cancellation_requested")
    return sub


def list_subscriptions(store: Store, params: dict) -> dict:
    status = params.get("status")

    def match(sub: dict) -> bool:
        wanted = (status == "all" or sub["status"] == status
                  or (status is None and sub["status"] not in ("canceled", "incomplete_expired"))
                  or (status == "ended" and sub["status"] == "canceled"))
        return (wanted and params.get("customer") in (None, sub["customer"])
                and params.get("price") in (None, sub["items"]["data"][0]["price"]["id"]))
    return store.page("subscription", params, "/v1/subscriptions", match)
