"""Checkout Sessions in subscription mode, and what paying on the hosted page does."""
from __future__ import annotations

from newsletter.stripe_sandbox import cards, catalog, subscriptions
from newsletter.stripe_sandbox.errors import StripeError, missing_parameter
from newsletter.stripe_sandbox.params import BOOL, INT, LIST, METADATA, STR, one_of
from newsletter.stripe_sandbox.store import Store

SESSION_CREATE = {
    "mode": one_of("payment", "setup", "subscription"),
    "line_items": [{"price": STR, "quantity": INT}],
    "success_url": STR, "cancel_url": STR, "client_reference_id": STR,
    "customer": STR, "customer_email": STR, "allow_promotion_codes": BOOL,
    "subscription_data": {"metadata": METADATA, "trial_period_days": INT, "description": STR},
    "metadata": METADATA, "expires_at": INT, "ui_mode": one_of("hosted_page"),
    "locale": STR, "expand": [STR],
}
SESSION_LIST = {**LIST, "customer": STR, "subscription": STR, "status": one_of(
    "open", "complete", "expired")}
MIN_LIFETIME, MAX_LIFETIME = 30 * 60, 24 * 3600


class SessionNotOpen(StripeError):
    """The Checkout Session was already paid or has expired."""


def create_session(store: Store, params: dict) -> dict:
    _check_create(store, params)
    item = params["line_items"][0]
    price = _subscription_price(store, item.get("price"))
    quantity = item.get("quantity", 1)
    customer = params.get("customer")
    session = {
        "id": store.new_id("cs_test_", 58), "object": "checkout.session",
        "after_expiration": None, "allow_promotion_codes": params.get("allow_promotion_codes"),
        "amount_subtotal": price["unit_amount"] * quantity,
        "amount_total": price["unit_amount"] * quantity,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None, "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"), "consent": None,
        "created": store.now(), "currency": price["currency"], "customer": customer,
        "customer_creation": None if customer else "always", "customer_details": None,
        "customer_email": params.get("customer_email"),
        "expires_at": params.get("expires_at", store.now() + MAX_LIFETIME), "invoice": None,
        "livemode": False, "locale": params.get("locale"), "metadata": params.get("metadata") or {},
        "mode": "subscription", "payment_intent": None, "payment_status": "unpaid",
        "status": "open", "submit_type": None, "subscription": None,
        "success_url": params.get("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page", "url": None,
    }
    session["url"] = f"{store.base_url}/c/pay/{session['id']}"
    return store.add(session, price=price["id"], quantity=quantity,
                     subscription_data=params.get("subscription_data", {}))


def _check_create(store: Store, params: dict) -> None:
    if "mode" not in params:
        raise missing_parameter("mode")
    if params["mode"] != "subscription":
        raise StripeError("The sandbox supports only mode=subscription.", param="mode")
    if not params.get("line_items"):
        raise missing_parameter("line_items")
    if len(params["line_items"]) != 1:
        raise StripeError("The sandbox supports exactly one line item.", param="line_items")
    if "customer" in params and "customer_email" in params:
        raise StripeError("You may only specify one of these parameters: customer, "
                          "customer_email.", param="customer_email")
    if "customer" in params:
        store.get(params["customer"], "customer", param="customer")
    lifetime = params.get("expires_at", store.now() + MAX_LIFETIME) - store.now()
    if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
        raise StripeError("The `expires_at` timestamp must be between 30 minutes and 24 hours "
                          "from Checkout Session creation.", param="expires_at")
    trial = params.get("subscription_data", {}).get("trial_period_days")
    if trial is not None and trial < 1:
        raise StripeError("trial_period_days must be at least 1.",
                          param="subscription_data[trial_period_days]")


def _subscription_price(store: Store, price_id: str | None) -> dict:
    if not price_id:
        raise missing_parameter("line_items[0][price]")
    price = store.get(price_id, "price", param="line_items[0][price]")
    if not price["active"]:
        raise StripeError("The price specified is inactive. This field only accepts active "
                          "prices.", param="line_items[0][price]")
    if price["recurring"] is None:
        raise StripeError("You must specify at least one recurring price in `subscription` "
                          "mode when using prices.", param="line_items[0][price]")
    return price


def line_items(store: Store, session: dict) -> dict:
    """The session's line items as Stripe lists them (GET …/line_items, expand[]=line_items)."""
    private = store.private[session["id"]]
    price = store.objects[private["price"]]
    amount = price["unit_amount"] * private["quantity"]
    item = {"id": f"li_{session['id'][8:32]}", "object": "item", "amount_discount": 0,
            "amount_subtotal": amount, "amount_tax": 0, "amount_total": amount,
            "currency": price["currency"], "description": store.objects[price["product"]]["name"],
            "price": price, "quantity": private["quantity"]}
    return {"object": "list", "data": [item], "has_more": False,
            "url": f"/v1/checkout/sessions/{session['id']}/line_items"}


def list_sessions(store: Store, params: dict) -> dict:
    def match(session: dict) -> bool:
        return all(params.get(key) in (None, session[key])
                   for key in ("customer", "subscription", "status"))
    return store.page("checkout.session", params, "/v1/checkout/sessions", match)


def expire(store: Store, session: dict) -> dict:
    if session["status"] != "open":
        raise StripeError("Only Checkout Sessions with a status of `open` can be expired.",
                          param="session")
    session.update(status="expired", url=None)
    store.emit("checkout.session.expired", session)
    return session


# ---------------------------------------------------------------- the Pay button

def pay(store: Store, session_id: str, card: str, email: str | None = None) -> dict:
    """Pay an open session with a test card: the customer, subscription and first invoice."""
    session = store.get(session_id, "checkout.session")
    if session["status"] != "open":
        raise SessionNotOpen(f"This Checkout Session is {session['status']}.", param="session")
    private = store.private[session_id]
    trial_days = private["subscription_data"].get("trial_period_days")
    digits = cards.check_card(card)
    if not trial_days and not cards.chargeable(digits):
        raise cards.CardDeclined(decline_code="generic_decline")
    customer = _paying_customer(store, session, email)
    method = cards.create_payment_method(store, digits, customer["id"], customer["email"])
    customer["invoice_settings"]["default_payment_method"] = method["id"]
    sub_id = store.new_id("sub_")
    _complete(store, session, customer, sub_id, trial_days)
    metadata = private["subscription_data"].get("metadata") or {}
    sub = subscriptions.create_subscription(store, customer, store.objects[private["price"]],
                                            private["quantity"], metadata, trial_days, sub_id)
    session["invoice"] = sub["latest_invoice"]
    return session


def _paying_customer(store: Store, session: dict, email: str | None) -> dict:
    if session["customer"]:
        return store.objects[session["customer"]]
    email = session["customer_email"] or email
    if not email:
        raise StripeError("Enter your email to pay.", param="email", code="email_invalid")
    return catalog.create_customer(store, {"email": email})


def _complete(store: Store, session: dict, customer: dict, sub_id: str,
              trial_days: int | None) -> None:
    """Mark the session complete and announce it, before the subscription's own events."""
    session.update(
        status="complete", customer=customer["id"], url=None, subscription=sub_id,
        payment_status="no_payment_required" if trial_days else "paid",
        customer_details={"address": None, "email": customer["email"], "name": customer["name"],
                          "phone": None, "tax_exempt": "none", "tax_ids": []},
    )
    store.emit("checkout.session.completed", session)
