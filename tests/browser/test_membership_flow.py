"""The membership in real headless Chromium: checkout on the sandbox's hosted page, the
account page, and the Customer Portal (cancel, and a new card after a failed payment).

Real parts: the app on a live server, the Stripe sandbox over HTTP delivering signed
webhooks to it, a real Celery worker writing what they say, a real SMTP server. Each
step leaves a screenshot in test-artifacts/browser/.
"""
from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from newsletter import db, memberships
from newsletter.models import Membership, Reader, StripeEvent, utcnow
from tests.conftest import open_shop, stripe_settings
from tests.support.browser import snap

pytestmark = pytest.mark.slow

MEMBER = "chromium.member@example.com"


@pytest.fixture
def app_config(app_config, stripe_sandbox):
    return app_config | stripe_settings(stripe_sandbox)


@pytest.fixture
def shop(app, runner, live_app, stripe_sandbox, worker):
    """The plan made at the sandbox, its webhooks pointed at the live app, a worker running."""
    open_shop(app, runner, live_app, stripe_sandbox)
    worker()
    return live_app


def settled(app, sandbox, timeout: float = 60) -> None:
    """Wait until every webhook is delivered and the worker has written it."""
    sandbox.wait_for_deliveries()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            pending = db.session().scalars(select(StripeEvent.id).where(StripeEvent.processed_at.is_(None))).all()
        if not pending:
            return
        time.sleep(0.1)
    raise AssertionError(f"events not processed: {pending}")


def state(app) -> str:
    with app.app_context():
        session = db.session()
        reader = session.scalars(select(Reader).where(Reader.email == MEMBER)).one()
        return memberships.reader_state(session, reader.id, utcnow(), 7)


def buy(page, shop, sandbox) -> None:
    page.goto(f"{shop.url}/membership")
    snap(page, "1-join")
    page.locator("form[action='/membership/checkout'] button[type=submit]").click()
    page.wait_for_url(f"{sandbox.url}/**")
    snap(page, "2-hosted-checkout")
    page.get_by_label("Email").fill(MEMBER)
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("alert").wait_for()
    assert "declined" in page.get_by_role("alert").inner_text()
    snap(page, "3-card-declined")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(f"{shop.url}/membership/success**")
    page.get_by_role("heading", name="Welcome to the Community").wait_for()
    snap(page, "4-welcome")


def test_checkout_then_cancel_in_the_portal(app, shop, stripe_sandbox, browser_page):
    page = browser_page
    buy(page, shop, stripe_sandbox)
    settled(app, stripe_sandbox)
    assert state(app) == "member"

    page.goto(f"{shop.url}/account")
    assert "Active" in page.locator(".membership-status").inner_text()
    snap(page, "5-account")
    page.get_by_role("button", name="Manage membership and billing").click()
    page.wait_for_url(f"{stripe_sandbox.url}/**")
    snap(page, "6-portal")
    page.get_by_role("button", name="Cancel membership").click()
    page.get_by_role("button", name="Don't cancel").wait_for()
    snap(page, "7-portal-cancelled")
    page.get_by_role("link", name="Return").click()
    page.wait_for_url(f"{shop.url}/account")
    settled(app, stripe_sandbox)
    page.reload()
    assert re.search(r"cancelled and ends on", page.content())
    snap(page, "8-account-cancellation-pending")
    assert state(app) == "member"  # until the period ends


def test_a_failed_payment_then_a_new_card_in_the_portal(app, shop, stripe_sandbox, browser_page):
    page = browser_page
    buy(page, shop, stripe_sandbox)
    settled(app, stripe_sandbox)
    with app.app_context():
        subscription = db.session().scalars(select(Membership.stripe_subscription_id)).one()
    stripe_sandbox.fail_next_renewals(subscription)
    stripe_sandbox.advance_clock(days=31)
    settled(app, stripe_sandbox)
    assert state(app) == "past_due"

    page.goto(f"{shop.url}/account")
    assert "did not go through" in page.get_by_role("alert").inner_text()
    snap(page, "5-account-past-due")
    page.get_by_role("button", name="Update your card").click()
    page.wait_for_url(f"{stripe_sandbox.url}/**")
    page.get_by_label("New card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Update card").click()
    page.get_by_role("status").wait_for()
    snap(page, "6-portal-card-updated")
    page.get_by_role("link", name="Return").click()
    page.wait_for_url(f"{shop.url}/account")
    settled(app, stripe_sandbox)
    page.reload()
    assert "Active" in page.locator(".membership-status").inner_text()
    snap(page, "7-account-active-again")
    assert state(app) == "member"
