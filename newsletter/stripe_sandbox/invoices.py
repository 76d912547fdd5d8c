"""Invoices: one per subscription period, finalized, then paid or failed on the card."""
from __future__ import annotations

import math

from newsletter.stripe_sandbox import cards
from newsletter.stripe_sandbox.params import LIST, STR, one_of
from newsletter.stripe_sandbox.store import Store

INVOICE_LIST = {**LIST, "customer": STR, "subscription": STR,
                "status": one_of("draft", "open", "paid", "uncollectible", "void")}


def new_invoice(store: Store, sub: dict, reason: str, amount: int) -> dict:
    """A draft invoice for the subscription's current period; the caller announces it."""
    item = sub["items"]["data"][0]
    customer = store.objects[sub["customer"]]
    invoice_id = store.new_id("in_")
    invoice = {
        "id": invoice_id, "object": "invoice", "account_country": "US",
        "amount_due": amount, "amount_paid": 0, "amount_remaining": amount,
        "attempt_count": 0, "attempted": False, "auto_advance": True,
        "billing_reason": reason, "collection_method": "charge_automatically",
        "created": store.now(), "currency": sub["currency"], "customer": customer["id"],
        "customer_email": customer["email"], "customer_name": customer["name"],
        "description": None, "hosted_invoice_url": None, "invoice_pdf": None,
        "lines": {"object": "list", "data": [_line(store, sub, invoice_id, amount)],
                  "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines"},
        "livemode": False, "metadata": {}, "next_payment_attempt": None, "number": None,
        # Since API 2025-03-31 the subscription is named here, not in `invoice.subscription`.
        "parent": {"type": "subscription_details", "quote_details": None,
                   "subscription_details": {"metadata": dict(sub["metadata"]),
                                            "subscription": sub["id"]}},
        "period_end": item["current_period_start"], "period_start": item["current_period_start"],
        "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None,
                               "paid_at": None, "voided_at": None},
        "subtotal": amount, "total": amount,
    }
    return store.add(invoice)


def _line(store: Store, sub: dict, invoice_id: str, amount: int) -> dict:
    item = sub["items"]["data"][0]
    price = item["price"]
    return {
        "id": store.new_id("il_"), "object": "line_item", "amount": amount,
        "currency": price["currency"], "description": _describe(store, item),
        "discountable": True, "discounts": [], "invoice": invoice_id, "livemode": False,
        "metadata": dict(sub["metadata"]),
        "parent": {"type": "subscription_item_details", "invoice_item_details": None,
                   "subscription_item_details": {"invoice_item": None, "proration": False,
                                                 "subscription": sub["id"],
                                                 "subscription_item": item["id"]}},
        "period": {"start": item["current_period_start"], "end": item["current_period_end"]},
        "pricing": {"type": "price_details", "unit_amount_decimal": price["unit_amount_decimal"],
                    "price_details": {"price": price["id"], "product": price["product"]}},
        "quantity": item["quantity"],
    }


def _describe(store: Store, item: dict) -> str:
    product = store.objects.get(item["price"]["product"], {})
    return f"{item['quantity']} × {product.get('name', 'Subscription')}"


def finalize(store: Store, invoice: dict) -> None:
    customer = store.objects[invoice["customer"]]
    invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    invoice["status"] = "open"
    invoice["status_transitions"]["finalized_at"] = store.now()
    invoice["hosted_invoice_url"] = f"{store.base_url}/i/{invoice['id']}"
    store.emit("invoice.finalized", invoice)


def attempt_payment(store: Store, invoice: dict) -> bool:
    """Charge the customer's card for an open invoice; invoice.paid or invoice.payment_failed."""
    if invoice["amount_due"] > 0:
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        if not _charge_succeeds(store, invoice):
            store.emit("invoice.payment_failed", invoice)
            return False
    invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0,
                   next_payment_attempt=None)
    invoice["status_transitions"]["paid_at"] = store.now()
    store.emit("invoice.paid", invoice)
    store.emit("invoice.payment_succeeded", invoice)
    return True


def _charge_succeeds(store: Store, invoice: dict) -> bool:
    subscription_id = invoice["parent"]["subscription_details"]["subscription"]
    if take_forced_failure(store, subscription_id) or take_forced_failure(store, invoice["customer"]):
        return False
    customer = store.objects[invoice["customer"]]
    number = cards.card_number(store, customer["invoice_settings"]["default_payment_method"])
    return number is not None and cards.chargeable(number)


def force_failures(store: Store, object_id: str, count: int | None) -> None:
    """The next `count` charges (None: all, until a new card) for this customer or subscription fail."""
    store.private[object_id]["failures"] = math.inf if count is None else count


def clear_forced_failures(store: Store, object_id: str) -> None:
    store.private[object_id].pop("failures", None)


def take_forced_failure(store: Store, object_id: str) -> bool:
    private = store.private.get(object_id, {})
    if private.get("failures", 0) <= 0:
        return False
    private["failures"] -= 1
    return True


def list_invoices(store: Store, params: dict) -> dict:
    def match(invoice: dict) -> bool:
        subscription = invoice["parent"]["subscription_details"]["subscription"]
        return (params.get("customer") in (None, invoice["customer"])
                and params.get("subscription") in (None, subscription)
                and params.get("status") in (None, invoice["status"]))
    return store.page("invoice", params, "/v1/invoices", match)
