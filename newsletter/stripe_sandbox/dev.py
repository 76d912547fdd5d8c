"""The sandbox as `newsletter dev` (or `python -m newsletter.stripe_sandbox`) runs it.

    with DevSandbox(webhook_url=f"{site}/stripe/webhook") as stripe_sandbox:
        env.update(stripe_sandbox.env)     # NEWSLETTER_STRIPE_* for the children

It starts the sandbox on loopback and names it in the environment the app reads. The
catalogue is the app's to make (`Billing`'s plan sync); given a MembershipPrice, it makes
that product and price first and names the price too (NEWSLETTER_STRIPE_PRICE_ID).
"""
from __future__ import annotations

from dataclasses import dataclass

from newsletter.stripe_sandbox import catalog
from newsletter.stripe_sandbox.sandbox import Sandbox


@dataclass(frozen=True)
class MembershipPrice:
    product_name: str = "Community membership"
    unit_amount: int = 500
    currency: str = "eur"
    interval: str = "month"
    lookup_key: str = "community_monthly"


def make_price(sandbox: Sandbox, wanted: MembershipPrice) -> str:
    """The product and recurring price a developer can subscribe to; the price id."""
    with sandbox.store.transaction() as store:
        product = catalog.create_product(store, {"name": wanted.product_name})
        price = catalog.create_price(store, {
            "product": product["id"], "unit_amount": wanted.unit_amount,
            "currency": wanted.currency, "recurring": {"interval": wanted.interval},
            "lookup_key": wanted.lookup_key, "transfer_lookup_key": True})
        return price["id"]


class DevSandbox:
    """A started sandbox (and a price, if asked for) for as long as the `with` lasts."""

    def __init__(self, webhook_url: str | None, host: str = "127.0.0.1", port: int = 0,
                 price: MembershipPrice | None = None) -> None:
        self.sandbox = Sandbox(webhook_url=webhook_url)
        self.host, self.port, self.wanted = host, port, price
        self.price_id: str | None = None

    def __enter__(self) -> DevSandbox:
        self.sandbox.start(self.host, self.port)
        if self.wanted is not None:
            self.price_id = make_price(self.sandbox, self.wanted)
        return self

    def __exit__(self, *exc_info) -> None:
        self.sandbox.stop()

    @property
    def url(self) -> str:
        return self.sandbox.url

    @property
    def env(self) -> dict[str, str]:
        """What points the app's processes at this sandbox."""
        env = {
            "NEWSLETTER_STRIPE_SECRET_KEY": self.sandbox.secret_key,
            "NEWSLETTER_STRIPE_WEBHOOK_SECRET": self.sandbox.webhook_secret,
            "NEWSLETTER_STRIPE_API_BASE": self.sandbox.url,
        }
        if self.price_id is not None:
            env["NEWSLETTER_STRIPE_PRICE_ID"] = self.price_id
        return env
