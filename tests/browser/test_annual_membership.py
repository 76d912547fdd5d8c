"""The annual membership in real headless Chromium: annual chosen on the join page, paid on
the sandbox's hosted page, shown on the account page with its renewal a year out.

Real parts: the app on a live server, the Stripe sandbox over HTTP. The success page writes
the membership itself (as the webhook's task would), so no worker is needed here.
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from newsletter import db
from newsletter.models import Membership, utcnow
from newsletter.web.reader import longdate
from tests.conftest import open_shop, stripe_settings
from tests.support.browser import snap

pytestmark = pytest.mark.slow


@pytest.fixture
def app_config(app_config, stripe_sandbox):
    return app_config | stripe_settings(stripe_sandbox) | {"MEMBERSHIP_ANNUAL_AMOUNT": 6000}


def test_choose_annual_pay_and_see_it_on_the_account_page(app, runner, live_app, stripe_sandbox, browser_page):
    open_shop(app, runner, live_app, stripe_sandbox)
    page = browser_page
    page.goto(f"{live_app.url}/membership")
    assert page.get_by_role("radio", name=re.compile("^Monthly")).is_checked()
    page.get_by_role("radio", name=re.compile("^Annual")).check()
    snap(page, "1-join-annual-chosen")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url(f"{stripe_sandbox.url}/**")
    assert "60.00 USD" in page.content() and "per year" in page.content()
    page.get_by_label("Email").fill("annual.member@example.com")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(f"{live_app.url}/membership/success**")
    page.get_by_role("heading", name="Welcome to the Community").wait_for()

    page.goto(f"{live_app.url}/account")
    with app.app_context():
        renews = db.session().scalars(select(Membership.current_period_end)).one()
    assert renews > utcnow() + timedelta(days=364)
    facts = page.locator(".membership-facts").inner_text()
    assert "Active" in facts and longdate(renews) in facts
    snap(page, "2-account-annual")
