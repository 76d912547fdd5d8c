"""Stripe's test card numbers, and the payment methods made from them."""
from __future__ import annotations

import datetime

from newsletter.stripe_sandbox.errors import CardDeclined
from newsletter.stripe_sandbox.store import Store

GOOD_CARD = "4242424242424242"
# Refused when entered (Checkout, the portal): the decline code Stripe gives for each.
DECLINED = {
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
}
# Accepted when entered, but every charge on it fails (Stripe's "attaches, charges fail").
CHARGES_FAIL = {"4000000000000341"}
BRANDS = {"4": "visa", "5": "mastercard", "3": "amex", "6": "discover"}


def normalize(number: str) -> str:
    return "".join(number.split()).replace("-", "")


def check_card(number: str, param: str = "card_number") -> str:
    """The card's digits when Stripe would accept it; CardDeclined otherwise."""
    digits = normalize(number)
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn_ok(digits):
        raise CardDeclined("Your card number is invalid.", code="invalid_number",
                           decline_code=None, param=param)
    if digits in DECLINED:
        raise CardDeclined(decline_code=DECLINED[digits])
    return digits


def chargeable(digits: str) -> bool:
    return digits not in CHARGES_FAIL and digits not in DECLINED


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def create_payment_method(store: Store, digits: str, customer_id: str, email: str | None) -> dict:
    """A card payment method attached to the customer (its number kept privately)."""
    year = datetime.datetime.fromtimestamp(store.now(), datetime.timezone.utc).year
    method = {
        "id": store.new_id("pm_"), "object": "payment_method", "allow_redisplay": "always",
        "billing_details": {"address": None, "email": email, "name": None, "phone": None},
        "card": {"brand": BRANDS.get(digits[0], "unknown"), "country": "US", "exp_month": 12,
                 "exp_year": year + 3, "funding": "credit", "last4": digits[-4:]},
        "created": store.now(), "customer": customer_id, "livemode": False, "metadata": {},
        "type": "card",
    }
    return store.add(method, number=digits)


def card_number(store: Store, payment_method_id: str | None) -> str | None:
    if payment_method_id is None:
        return None
    return store.private[payment_method_id]["number"]
