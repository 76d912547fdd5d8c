"""The sandbox for `newsletter dev` and `python -m newsletter.stripe_sandbox`.

The catalogue is the app's to make, through the API as against real Stripe
(`Billing.sync_plan`, what `newsletter stripe sync` runs), so there is one way to make it.
"""
from __future__ import annotations

from newsletter.billing import Billing, Plan
from newsletter.stripe_sandbox.sandbox import Sandbox


def app_env(sandbox: Sandbox) -> dict[str, str]:
    """The NEWSLETTER_STRIPE_* variables that point the app's processes at `sandbox`."""
    return {"NEWSLETTER_STRIPE_SECRET_KEY": sandbox.secret_key,
            "NEWSLETTER_STRIPE_WEBHOOK_SECRET": sandbox.webhook_secret,
            "NEWSLETTER_STRIPE_API_BASE": sandbox.url}


def make_plan(sandbox: Sandbox, plan: Plan) -> dict:
    """The membership's product and prices at the sandbox, as `newsletter stripe sync` makes them."""
    return Billing(sandbox.secret_key, sandbox.url).sync_plan(plan)
