"""The membership over real HTTP: our app on a live server, the Stripe sandbox, webhooks.

A reader's browser is a requests.Session; webhooks travel from the sandbox to the live
server; the tasks they queue run as a worker would (`run_queued`), or in a real worker.
"""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
import stripe
from sqlalchemy import select

from newsletter import db, memberships
from newsletter.models import Membership, Reader, StripeEvent, utcnow
from newsletter.web.reader import longdate
from tests.conftest import open_shop, stripe_settings
from tests.support.membership import DECLINED_CARD, follow, form_of, pay, start_checkout, submit
from tests.web.markup import parse
from tests.web.signups import run_queued  # noqa: F401  (fixture)


@pytest.fixture
def app_config(app_config, live_server, stripe_sandbox):
    return app_config | {"BASE_URL": live_server.url} | stripe_settings(stripe_sandbox)


@pytest.fixture
def site(app, runner, live_server, stripe_sandbox):
    """The app served over HTTP, its plan made at the sandbox, webhooks pointed at it."""
    open_shop(app, runner, live_server, stripe_sandbox)
    yield live_server
    live_server.stop()


@pytest.fixture
def browser():
    with requests.Session() as session:
        yield session


def settle(sandbox, run_queued) -> list[str]:
    """Let every webhook arrive, then run what they queued."""
    sandbox.wait_for_deliveries()
    return run_queued()


def subscription_id(app) -> str:
    with app.app_context():
        return db.session().scalars(select(Membership.stripe_subscription_id)).one()


def state_of(app, email: str) -> str:
    with app.app_context():
        session = db.session()
        reader = session.scalars(select(Reader).where(Reader.email == email)).one()
        return memberships.reader_state(session, reader.id, utcnow(), 7)


def test_checkout_hosted_page_webhook_member(app, site, stripe_sandbox, browser, run_queued, smtp_server):
    checkout = start_checkout(browser, site.url, article="a-story", prompt="membership", variant="warm")
    assert checkout.url.startswith(stripe_sandbox.url) and "Pay" in checkout.text
    welcome = pay(browser, checkout, "new.member@example.com")
    assert welcome.status_code == 200 and "Welcome to the Community" in welcome.text
    assert browser.cookies.get("member")  # checkout success signed the buyer in
    names = settle(stripe_sandbox, run_queued)
    assert "memberships.sync" in names and "memberships.mail" in names
    assert state_of(app, "new.member@example.com") == "member"
    with app.app_context():
        row = db.session().scalars(select(Membership)).one()
        # A variant the form names is kept, one of no prompt of the rules too: a click.
        assert (row.prompt, row.prompt_variant, row.source_article, row.prompt_path) == \
            ("membership", "warm", "a-story", "click")
        assert db.session().scalars(select(StripeEvent).where(StripeEvent.processed_at.is_(None))).all() == []
    [mail] = smtp_server.wait_for("new.member@example.com")
    assert mail["Subject"] == "Welcome to the Community: thank you for supporting The Daily Edition"
    account = browser.get(f"{site.url}/account")
    assert "Active" in account.text and "Manage membership and billing" in account.text


def test_a_broken_prompt_rules_file_does_not_stop_a_sale(app, site, stripe_sandbox, browser, run_queued, tmp_path):
    broken = tmp_path / "broken-rules.json"
    broken.write_text("{ a bad edit on disk")
    app.config["PROMPT_RULES"] = str(broken)
    checkout = start_checkout(browser, site.url, article="a-story", prompt="membership", variant="warm")
    assert pay(browser, checkout, "despite@example.com").status_code == 200
    settle(stripe_sandbox, run_queued)
    assert state_of(app, "despite@example.com") == "member"
    with app.app_context():
        assert db.session().scalars(select(Membership.prompt_variant)).one() == "warm"


def test_a_nul_in_the_checkout_form_still_makes_the_member(app, site, stripe_sandbox, browser, run_queued):
    # PostgreSQL refuses NUL in text: the attribution came back from Stripe with it, the
    # welcome page answered 500 and the sync task failed, a paid membership left unwritten.
    checkout = start_checkout(browser, site.url, article="a-\x00story", prompt="member\x00ship", variant="wa\x00rm")
    assert pay(browser, checkout, "nul@example.com").status_code == 200
    settle(stripe_sandbox, run_queued)
    assert state_of(app, "nul@example.com") == "member"
    with app.app_context():
        row = db.session().scalars(select(Membership)).one()
        assert (row.prompt, row.prompt_variant, row.source_article) == ("membership", "warm", "a-story")


def test_the_success_page_never_trusts_the_redirect(app, site, stripe_sandbox, browser):
    checkout = start_checkout(browser, site.url)
    session_id = checkout.url.rsplit("/", 1)[1]
    early = browser.get(f"{site.url}/membership/success", params={"session_id": session_id})
    assert early.status_code == 200 and "Confirming your payment" in early.text
    assert 'http-equiv="refresh"' in early.text and browser.cookies.get("member") is None
    forged = browser.get(f"{site.url}/membership/success", params={"session_id": "cs_test_forged"})
    assert forged.status_code == 404
    with app.app_context():
        assert db.session().scalars(select(Membership)).all() == []


def test_only_the_paying_browser_is_signed_in(app, site, stripe_sandbox, browser):
    checkout = start_checkout(browser, site.url)
    welcome = pay(browser, checkout, "payer@example.com")
    assert browser.cookies.get("member")
    with requests.Session() as stranger:
        seen = stranger.get(welcome.url)
        assert seen.status_code == 200 and "sign in" in seen.text and stranger.cookies.get("member") is None


def test_a_declined_card_makes_no_member(app, site, stripe_sandbox, browser, run_queued):
    checkout = start_checkout(browser, site.url)
    again = pay(browser, checkout, "declined@example.com", DECLINED_CARD)
    assert again.url.startswith(stripe_sandbox.url) and "declined" in again.text
    settle(stripe_sandbox, run_queued)
    with app.app_context():
        assert db.session().scalars(select(Membership)).all() == []


def test_a_member_pressing_join_again_goes_to_the_account(app, site, stripe_sandbox, browser, run_queued):
    pay(browser, start_checkout(browser, site.url), "twice@example.com")
    settle(stripe_sandbox, run_queued)
    again = submit(browser, browser.get(f"{site.url}/membership"))
    assert again.status_code == 303 and again.headers["Location"].endswith("/account")


def test_failed_renewal_past_due_grace_then_ended(app, site, stripe_sandbox, browser, run_queued, smtp_server):
    pay(browser, start_checkout(browser, site.url), "late@example.com")
    settle(stripe_sandbox, run_queued)
    assert state_of(app, "late@example.com") == "member"
    stripe_sandbox.fail_next_renewals(subscription_id(app))

    stripe_sandbox.advance_clock(days=31)  # the renewal fails
    settle(stripe_sandbox, run_queued)
    assert state_of(app, "late@example.com") == "past_due"
    failed = smtp_server.wait_for("late@example.com", 2)[-1]
    assert "did not go through" in failed["Subject"]
    assert "/membership/billing/" in failed.get_body(("plain",)).get_content()
    account = browser.get(f"{site.url}/account")
    assert "Please update your card" in account.text and "Update your card" in account.text

    stripe_sandbox.advance_clock(days=30)  # Stripe's retries fail too: the subscription ends
    settle(stripe_sandbox, run_queued)
    assert state_of(app, "late@example.com") == "none"
    assert "has ended" in smtp_server.wait_for("late@example.com", 3)[-1]["Subject"]


def test_a_renewal_that_succeeds_keeps_the_member(app, site, stripe_sandbox, browser, run_queued, smtp_server):
    pay(browser, start_checkout(browser, site.url), "steady@example.com")
    settle(stripe_sandbox, run_queued)
    stripe_sandbox.advance_clock(days=31)
    settle(stripe_sandbox, run_queued)
    assert state_of(app, "steady@example.com") == "member"
    with app.app_context():
        row = db.session().scalars(select(Membership)).one()
        assert row.current_period_end > utcnow()
    assert len(smtp_server.to("steady@example.com")) == 1  # the welcome only


def test_portal_cancel_is_pending_then_ends(app, site, stripe_sandbox, browser, run_queued, smtp_server):
    pay(browser, start_checkout(browser, site.url), "leaving@example.com")
    settle(stripe_sandbox, run_queued)
    account = browser.get(f"{site.url}/account")
    portal = submit(browser, account, button="Manage membership and billing")
    assert portal.status_code == 303 and portal.headers["Location"].startswith(stripe_sandbox.url)
    portal_page = browser.get(portal.headers["Location"])
    cancelled = submit(browser, portal_page, button="Cancel membership")
    assert cancelled.status_code in (200, 303)
    settle(stripe_sandbox, run_queued)
    account = browser.get(f"{site.url}/account")
    assert "cancelled and ends on" in account.text and state_of(app, "leaving@example.com") == "member"
    stripe_sandbox.advance_clock(days=31)
    settle(stripe_sandbox, run_queued)
    assert state_of(app, "leaving@example.com") == "none"
    assert "has ended" in smtp_server.wait_for("leaving@example.com", 2)[-1]["Subject"]


@pytest.mark.slow
def test_a_real_worker_keeps_the_membership_true(app, site, stripe_sandbox, browser, worker):
    worker()
    pay(browser, start_checkout(browser, site.url), "worker@example.com")
    stripe_sandbox.wait_for_deliveries()
    deadline = time.monotonic() + 60
    while unprocessed(app) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert unprocessed(app) == []
    assert state_of(app, "worker@example.com") == "member"


def unprocessed(app) -> list[str]:
    with app.app_context():
        return db.session().scalars(select(StripeEvent.type).where(StripeEvent.processed_at.is_(None))).all()


def test_a_trial_makes_a_member_with_nothing_paid_yet(app, site, stripe_sandbox, browser, run_queued):
    app.config["MEMBERSHIP_TRIAL_DAYS"] = 14
    welcome = pay(browser, start_checkout(browser, site.url), "trial@example.com")
    assert "Welcome to the Community" in welcome.text
    settle(stripe_sandbox, run_queued)
    assert state_of(app, "trial@example.com") == "member"
    with app.app_context():
        assert db.session().scalars(select(Membership.status)).one() == "trialing"
    assert "(free trial)" in browser.get(f"{site.url}/account").text


def test_without_a_stripe_key_checkout_says_payments_are_unavailable(app, site, browser):
    app.config["STRIPE_SECRET_KEY"] = None
    app.extensions.pop("billing", None)
    response = submit(browser, browser.get(f"{site.url}/membership"))
    assert response.status_code == 503 and "can’t take payments right now" in response.text


def test_without_a_stripe_key_the_success_page_says_payments_are_unavailable(app, site, browser):
    app.config["STRIPE_SECRET_KEY"] = None
    app.extensions.pop("billing", None)
    response = browser.get(f"{site.url}/membership/success", params={"session_id": "cs_test_123"})
    assert response.status_code == 503 and "can’t take payments right now" in response.text


def test_the_member_cookie_is_secure_on_an_https_site(app, client):
    from newsletter.web import member_session

    app.config["BASE_URL"] = "https://news.example"
    with app.test_request_context():
        response = member_session.sign_in(app.make_response("ok"), "r1")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# ---------------------------------------------------------------- monthly or annual

@pytest.fixture
def annual_site(app, runner, site):
    """`site` with an annual price ($60) beside the monthly one, as `stripe sync` makes it."""
    app.config["MEMBERSHIP_ANNUAL_AMOUNT"] = 6000
    result = runner.invoke(args=["stripe", "sync"])
    assert result.exit_code == 0, result.output
    return site


def sandbox_api(sandbox) -> stripe.StripeClient:
    return stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url})


def sold_price(sandbox, checkout: requests.Response) -> dict:
    """The price on the line item of the Checkout session whose hosted page `checkout` is."""
    items = sandbox_api(sandbox).v1.checkout.sessions.line_items.list(checkout.url.rsplit("/", 1)[1])
    return items.data[0]["price"]


def post_checkout(browser, site_url: str, **fields) -> requests.Response:
    """POST /membership/checkout with `fields` only, as a form without the plan choice does."""
    token = browser.get(f"{site_url}/api/v1/csrf").json()["csrf_token"]
    return browser.post(f"{site_url}/membership/checkout", data={"csrf_token": token, **fields}, allow_redirects=False)


def plan_choice(html: str) -> dict[str, bool]:
    """The join page's `interval` radio buttons: {value: checked}."""
    radios = form_of(html).find_all("input", name="interval")
    return {radio.attrs["value"]: "checked" in radio.attrs for radio in radios}


def test_the_join_page_offers_annual_only_when_an_annual_price_is_set(app, client):
    page = client.get("/membership").get_data(as_text=True)
    assert plan_choice(page) == {} and "Join for $6 a month" in page
    app.config["MEMBERSHIP_ANNUAL_AMOUNT"] = 6000
    page = client.get("/membership").get_data(as_text=True)
    assert plan_choice(page) == {"month": True, "year": False}
    text = parse(page.encode()).find("fieldset").text()
    assert "Monthly $6 a month" in text and "Annual $60 a year (save $12 against twelve months)" in text
    app.config["MEMBERSHIP_ANNUAL_AMOUNT"] = 7500  # dearer than twelve months: no saving to show
    assert "save" not in parse(client.get("/membership").data).find("fieldset").text()


def test_an_annual_checkout_sells_the_annual_price_with_the_same_attribution(app, annual_site, stripe_sandbox, browser,
                                                                             run_queued):
    checkout = start_checkout(browser, annual_site.url, interval="year", article="a-story", prompt="membership",
                              variant="warm")
    price = sold_price(stripe_sandbox, checkout)
    assert (price["lookup_key"], price["unit_amount"], price["recurring"]["interval"]) == ("community_annual", 6000, "year")
    assert "60.00 USD" in checkout.text and "per year" in checkout.text
    session = stripe_sandbox.get(checkout.url.rsplit("/", 1)[1])
    assert {k: v for k, v in session["metadata"].items() if k != "reader_id"} == {
        "prompt": "membership", "prompt_variant": "warm", "source_article": "a-story", "prompt_path": "click"}
    pay(browser, checkout, "annual@example.com")
    settle(stripe_sandbox, run_queued)
    with app.app_context():
        row = db.session().scalars(select(Membership)).one()
    assert (row.prompt, row.prompt_variant, row.source_article, row.prompt_path) == \
        ("membership", "warm", "a-story", "click")
    assert row.current_period_end > utcnow() + timedelta(days=364)
    account = parse(browser.get(f"{annual_site.url}/account").content)
    assert f"Renews on {longdate(row.current_period_end)}" in account.find("dl").text()


def test_a_checkout_naming_no_interval_is_monthly_as_before(app, annual_site, stripe_sandbox, browser):
    response = post_checkout(browser, annual_site.url, prompt="membership", variant="warm", article="a-story")
    checkout = follow(browser, response)
    assert sold_price(stripe_sandbox, checkout)["lookup_key"] == "community_monthly"
    assert stripe_sandbox.get(checkout.url.rsplit("/", 1)[1])["metadata"]["prompt_variant"] == "warm"


@pytest.mark.parametrize("annual, interval, says", [
    (False, "year", "We do not offer an annual membership"),
    (False, "weekly", "We do not offer that billing period"),
    (True, "weekly", "Please choose monthly or annual"),
])
def test_an_interval_not_on_sale_is_refused_keeping_the_form(app, site, stripe_sandbox, browser, annual, interval, says):
    app.config["MEMBERSHIP_ANNUAL_AMOUNT"] = 6000 if annual else None
    response = post_checkout(browser, site.url, interval=interval, prompt="membership", variant="warm", article="a-story")
    assert response.status_code == 422 and says in response.text and "Nothing was charged" in response.text
    kept = {i.attrs["name"]: i.attrs.get("value") for i in form_of(response.text).find_all("input", type="hidden")}
    assert (kept["prompt"], kept["variant"], kept["article"]) == ("membership", "warm", "a-story")
    assert plan_choice(response.text) == ({"month": False, "year": False} if annual else {})
    assert sandbox_api(stripe_sandbox).v1.checkout.sessions.list().data == []
    with app.app_context():
        assert db.session().scalars(select(Reader)).all() == []


def test_an_expired_form_comes_back_with_the_annual_choice_kept(app, annual_site, browser):
    response = browser.post(f"{annual_site.url}/membership/checkout", data={"interval": "year", "variant": "warm"})
    assert response.status_code == 400 and "could not verify the form" in response.text
    assert plan_choice(response.text) == {"month": False, "year": True}


def test_an_annual_amount_without_its_price_at_stripe_is_unavailable_not_monthly(app, site, stripe_sandbox, browser):
    app.config["MEMBERSHIP_ANNUAL_AMOUNT"] = 6000  # set, but `stripe sync` not run since
    response = post_checkout(browser, site.url, interval="year")
    assert response.status_code == 503 and "can’t take payments right now" in response.text
    assert sandbox_api(stripe_sandbox).v1.checkout.sessions.list().data == []
