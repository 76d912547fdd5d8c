"""Stripe, behind one small class: the real API, or any Stripe-compatible one (our sandbox).

The domain (newsletter.memberships) talks to `Billing` only; which Stripe it reaches is
configuration: STRIPE_SECRET_KEY and STRIPE_API_BASE (the sandbox's address in
`newsletter dev` and the tests). Results are plain dicts, so nothing past this module
knows stripe-python's object types.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import stripe

# The API version our code and the sandbox speak; pinned so an upgrade of the library
# or a change of the account's default version changes nothing by surprise.
API_VERSION = "2026-10-28.endive"
PRODUCT_KEY = "community_membership"          # metadata key that finds our product again
LOOKUP_KEYS = {"month": "community_monthly", "year": "community_annual"}
WEBHOOK_TOLERANCE = 300                        # seconds: older signed timestamps are refused


class BillingNotConfigured(Exception):
    """No Stripe key: `newsletter dev` starts the sandbox; elsewhere set NEWSLETTER_STRIPE_SECRET_KEY."""


class InvalidSignature(Exception):
    """A webhook whose Stripe-Signature does not verify (or is too old)."""


class BillingError(Exception):
    """Stripe (or the sandbox) refused a call or could not be reached."""


CURRENCY_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}


def money(amount: int, currency: str) -> str:
    """An amount for readers: 600 "usd" is "$6", 450 "eur" "€4.50", 600 "chf" "6 CHF"."""
    number = f"{amount / 100:.2f}".removesuffix(".00")
    symbol = CURRENCY_SYMBOLS.get(currency.lower())
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


@dataclass(frozen=True)
class Plan:
    """What `stripe sync` makes: the product, and a price per billing interval."""

    name: str
    currency: str
    monthly_amount: int            # in the currency's smallest unit: 600 is $6.00
    annual_amount: int | None = None

    @classmethod
    def from_config(cls, config) -> Plan:
        return cls(name=config["MEMBERSHIP_NAME"], currency=config["MEMBERSHIP_CURRENCY"],
                   monthly_amount=int(config["MEMBERSHIP_MONTHLY_AMOUNT"]),
                   annual_amount=int(config["MEMBERSHIP_ANNUAL_AMOUNT"] or 0) or None)

    @property
    def amounts(self) -> dict[str, int]:
        """The amount of each interval on sale: {"month": 600}, and "year" when an annual amount is set."""
        amounts = {"month": self.monthly_amount, "year": self.annual_amount}
        return {interval: amount for interval, amount in amounts.items() if amount}

    @property
    def annual_saving(self) -> int:
        """What the annual price saves against twelve monthly payments (0 without one, or none saved)."""
        return max(0, 12 * self.monthly_amount - self.annual_amount) if self.annual_amount else 0


class Billing:
    """The few Stripe calls the membership makes, each with an idempotency key of ours."""

    def __init__(self, secret_key: str, api_base: str | None = None, webhook_secret: str | None = None):
        addresses = {"api": api_base.rstrip("/")} if api_base else None
        self._client = stripe.StripeClient(secret_key, stripe_version=API_VERSION,
                                           base_addresses=addresses, max_network_retries=2)
        self.webhook_secret = webhook_secret

    @classmethod
    def for_app(cls, app) -> Billing:
        """The app's client, made once per process (building one costs ~45 ms of TLS setup)."""
        if "billing" not in app.extensions:
            app.extensions["billing"] = cls.from_config(app.config)
        return app.extensions["billing"]

    @classmethod
    def from_config(cls, config) -> Billing:
        if not config.get("STRIPE_SECRET_KEY"):
            raise BillingNotConfigured("no Stripe key: set NEWSLETTER_STRIPE_SECRET_KEY, or run `newsletter dev`")
        return cls(config["STRIPE_SECRET_KEY"], config.get("STRIPE_API_BASE"),
                   config.get("STRIPE_WEBHOOK_SECRET"))

    # ------------------------------------------------------------ product and prices

    def sync_plan(self, plan: Plan) -> dict:
        """Create or update the product and its prices; returns {"product": id, "month": id, ...}."""
        product = self._product(plan)
        result = {"product": product["id"]}
        for interval, amount in plan.amounts.items():
            result[interval] = self._price(product["id"], interval, amount, plan.currency)
        return result

    def _product(self, plan: Plan) -> dict:
        found = [p for p in self._call(self._client.v1.products.list, {"limit": 100})["data"]
                 if p["metadata"].get("key") == PRODUCT_KEY]
        params = {"name": plan.name, "active": True}
        if found:
            return self._call(self._client.v1.products.update, found[0]["id"], params)
        return self._call(self._client.v1.products.create, params | {"metadata": {"key": PRODUCT_KEY}},
                          key=f"product:{PRODUCT_KEY}")

    def _price(self, product_id: str, interval: str, amount: int, currency: str) -> str:
        lookup = LOOKUP_KEYS[interval]
        current = self._call(self._client.v1.prices.list, {"lookup_keys": [lookup], "active": True})["data"]
        if current and current[0]["unit_amount"] == amount and current[0]["currency"] == currency:
            return current[0]["id"]
        # Prices cannot change their amount: a new price takes the lookup key over.
        price = self._call(self._client.v1.prices.create, {
            "product": product_id, "unit_amount": amount, "currency": currency,
            "recurring": {"interval": interval}, "lookup_key": lookup, "transfer_lookup_key": True,
        }, key=f"price:{lookup}:{currency}:{amount}")
        for old in current:
            self._call(self._client.v1.prices.update, old["id"], {"active": False})
        return price["id"]

    def price_id(self, interval: str = "month") -> str | None:
        """The active price of `interval` that `stripe sync` made, or None."""
        found = self._call(self._client.v1.prices.list, {"lookup_keys": [LOOKUP_KEYS[interval]], "active": True})
        return found["data"][0]["id"] if found["data"] else None

    # ------------------------------------------------------------ checkout and portal

    def create_checkout(self, params: dict, key: str) -> dict:
        return self._call(self._client.v1.checkout.sessions.create, params, key=key)

    def checkout_session(self, session_id: str) -> dict:
        return self._call(self._client.v1.checkout.sessions.retrieve, session_id)

    def portal_url(self, customer_id: str, return_url: str) -> str:
        params = {"customer": customer_id, "return_url": return_url}
        return self._call(self._client.v1.billing_portal.sessions.create, params)["url"]

    def subscription(self, subscription_id: str) -> dict:
        return self._call(self._client.v1.subscriptions.retrieve, subscription_id)

    def customer(self, customer_id: str) -> dict:
        return self._call(self._client.v1.customers.retrieve, customer_id)

    def invoice(self, invoice_id: str) -> dict:
        return self._call(self._client.v1.invoices.retrieve, invoice_id)

    # ------------------------------------------------------------ webhooks

    def verify_event(self, payload: bytes, signature: str | None) -> dict:
        """The event in a webhook body whose signature verifies; raises InvalidSignature."""
        if not self.webhook_secret:
            raise InvalidSignature("no webhook secret configured")
        try:
            stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature or "",
                                                  self.webhook_secret, WEBHOOK_TOLERANCE)
            event = json.loads(payload)
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError) as e:
            raise InvalidSignature(str(e)) from None
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            raise InvalidSignature("not a Stripe event")
        return event

    # ------------------------------------------------------------ plumbing

    def _call(self, method, *args, key: str | None = None) -> dict:
        options = {"idempotency_key": idempotency_key(key)} if key else {}
        try:
            if args and isinstance(args[-1], dict):
                result = method(*args[:-1], params=args[-1], options=options)
            else:
                result = method(*args, options=options)
        except stripe.StripeError as e:
            raise BillingError(f"Stripe: {e.user_message or e}") from e
        return result.to_dict()


def idempotency_key(key: str) -> str:
    """Our id for a call, hashed to Stripe's length limit and a fixed alphabet."""
    return "nl-" + hashlib.sha256(key.encode()).hexdigest()[:40]
