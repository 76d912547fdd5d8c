"""`newsletter stripe …`: the membership's product and prices at Stripe."""
from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import with_appcontext

from newsletter.billing import Billing, BillingError, BillingNotConfigured, Plan


@click.group("stripe")
def stripe_group() -> None:
    """Stripe: the membership's product and prices."""


@stripe_group.command("sync")
@click.option("--json", "as_json", is_flag=True, help="Print the ids as JSON.")
@with_appcontext
def sync_command(as_json: bool) -> None:
    """Create or update the membership product and its prices (safe to run again)."""
    config = current_app.config
    try:
        ids = Billing.from_config(config).sync_plan(Plan.from_config(config))
    except (BillingNotConfigured, BillingError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(ids))
        return
    click.echo(f"product {ids['product']}")
    for interval in ("month", "year"):
        if interval in ids:
            click.echo(f"price {ids[interval]} ({interval}ly)")
    if not config["STRIPE_PRICE_ID"]:
        click.echo("checkout uses the monthly price by its lookup key; NEWSLETTER_STRIPE_PRICE_ID may name it")
