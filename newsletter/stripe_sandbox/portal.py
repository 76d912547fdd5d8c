"""Billing portal sessions, and what the portal's buttons do to the customer's subscriptions."""
from __future__ import annotations

import copy

from newsletter.stripe_sandbox import cards, invoices, subscriptions
from newsletter.stripe_sandbox.errors import StripeError, missing_parameter
from newsletter.stripe_sandbox.params import STR
from newsletter.stripe_sandbox.store import Store

PORTAL_CREATE = {"customer": STR, "return_url": STR, "locale": STR, "expand": [STR]}


def create_session(store: Store, params: dict) -> dict:
    if not params.get("customer"):
        raise missing_parameter("customer")
    store.get(params["customer"], "customer", param="customer")
    session = {
        "id": store.new_id("bps_"), "object": "billing_portal.session",
        "configuration": "bpc_sandbox_default", "created": store.now(),
        "customer": params["customer"], "flow": None, "livemode": False,
        "locale": params.get("locale"), "on_behalf_of": None,
        "return_url": params.get("return_url"),
    }
    session["url"] = f"{store.base_url}/p/session/{session['id']}"
    return store.add(session)


def shown_subscriptions(store: Store, customer_id: str) -> list[dict]:
    """What the portal lists: the customer's subscriptions that have not ended."""
    return store.all("subscription", lambda s: s["customer"] == customer_id
                     and s["status"] not in ("canceled", "incomplete_expired"))


def customer_subscription(store: Store, customer_id: str, sub_id: str) -> dict:
    sub = store.get(sub_id, "subscription", param="subscription")
    if sub["customer"] != customer_id:
        raise StripeError(f"No such subscription: '{sub_id}'", status=404,
                          param="subscription", code="resource_missing")
    return sub


def update_card(store: Store, customer_id: str, card: str) -> dict:
    """Replace the customer's card, then pay what a past_due or unpaid subscription owes."""
    customer = store.get(customer_id, "customer", param="customer")
    digits = cards.check_card(card)
    before = copy.deepcopy(customer)
    method = cards.create_payment_method(store, digits, customer_id, customer["email"])
    store.emit("payment_method.attached", method)
    customer["invoice_settings"]["default_payment_method"] = method["id"]
    store.emit_changes("customer.updated", customer, before)
    invoices.clear_forced_failures(store, customer_id)
    for sub in store.all("subscription", lambda s: s["customer"] == customer_id):
        invoices.clear_forced_failures(store, sub["id"])
        sub["default_payment_method"] = method["id"]
        subscriptions.pay_open_invoice(store, sub)
    return method
