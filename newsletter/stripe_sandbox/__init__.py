"""A Stripe sandbox: the parts of Stripe's API we use, on loopback, for tests and `newsletter dev`.

    sb = Sandbox(webhook_url="http://127.0.0.1:5000/stripe/webhook")
    base = sb.start()      # StripeClient(sb.secret_key, base_addresses={"api": base})

See docs/stripe-sandbox.md.
"""
from newsletter.stripe_sandbox.errors import CardDeclined, StripeError
from newsletter.stripe_sandbox.events import Delivery, sign
from newsletter.stripe_sandbox.sandbox import Sandbox

__all__ = ["CardDeclined", "Delivery", "Sandbox", "StripeError", "sign"]
