"""The hosted Checkout and portal pages, driven with plain HTTP as a browser would."""
from __future__ import annotations

import re

from tests.stripe_sandbox.conftest import GOOD_CARD, event_types, http

DECLINED_CARD = "4000000000000002"


def test_checkout_page_shows_the_form(make_session):
    session = make_session(customer_email="known@example.com")
    page = http().get(session["url"])
    assert page.status_code == 200
    assert "Community membership" in page.text and "5.00 EUR" in page.text
    assert 'name="email"' in page.text and 'value="known@example.com"' in page.text
    assert 'name="card_number"' in page.text and ">Pay</button>" in page.text
    assert 'href="http://127.0.0.1:9/membership">Cancel</a>' in page.text


def test_paying_redirects_to_success_with_the_session_id(sandbox, api, make_session):
    session = make_session(client_reference_id="reader-7")
    answer = http().post(session["url"], data={"email": "new@example.com",
                                               "card_number": "4242 4242 4242 4242"},
                         allow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"http://127.0.0.1:9/welcome?session={session['id']}"
    done = api.v1.checkout.sessions.retrieve(session["id"])
    assert done["status"] == "complete" and done["client_reference_id"] == "reader-7"
    assert api.v1.customers.retrieve(done["customer"])["email"] == "new@example.com"
    assert event_types(sandbox)[-7:] == [
        "customer.created", "checkout.session.completed", "customer.subscription.created",
        "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"]
    again = http().get(session["url"])
    assert "Payment complete" in again.text


def test_declined_card_keeps_the_session_open(sandbox, api, make_session):
    session = make_session()
    before = len(sandbox.events())
    answer = http().post(session["url"], data={"email": "new@example.com",
                                               "card_number": DECLINED_CARD})
    assert answer.status_code == 402 and "Your card was declined." in answer.text
    assert 'value="new@example.com"' in answer.text
    assert api.v1.checkout.sessions.retrieve(session["id"])["status"] == "open"
    assert len(sandbox.events()) == before
    assert api.v1.customers.list().data == []


def test_invalid_number_and_missing_email(make_session):
    session = make_session()
    invalid = http().post(session["url"], data={"email": "a@example.com", "card_number": "1234"})
    assert invalid.status_code == 402 and "Your card number is invalid." in invalid.text
    no_email = http().post(session["url"], data={"email": "", "card_number": GOOD_CARD})
    assert no_email.status_code == 400 and "Enter your email" in no_email.text


def test_trial_checkout(sandbox, api, make_session):
    session = make_session(customer_email="t@example.com",
                           subscription_data={"trial_period_days": 14})
    assert "14 days free" in http().get(session["url"]).text
    done = sandbox.pay_checkout(session["id"])
    assert done["payment_status"] == "no_payment_required"
    sub = api.v1.subscriptions.retrieve(done["subscription"])
    assert sub["status"] == "trialing" and sub["trial_end"] - sub["trial_start"] == 14 * 86400
    assert api.v1.invoices.retrieve(sub["latest_invoice"])["amount_due"] == 0


def test_expired_session_page(api, make_session):
    session = make_session()
    api.v1.checkout.sessions.expire(session["id"])
    page = http().get(f"{session['url']}")
    assert page.status_code == 410 and "expired" in page.text


def portal_url(api, customer_id):
    return api.v1.billing_portal.sessions.create(params={
        "customer": customer_id, "return_url": "http://127.0.0.1:9/account"})["url"]


def test_portal_cancel_then_renew(sandbox, api, paid_subscription):
    customer_id, sub_id = paid_subscription()
    url = portal_url(api, customer_id)
    page = http().get(url)
    assert "Cancel membership</button>" in page.text and ">Return</a>" in page.text
    assert "Visa ending in 4242" in page.text
    answer = http().post(f"{url}/cancel", data={"subscription": sub_id}, allow_redirects=False)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("?notice=canceled")
    sub = api.v1.subscriptions.retrieve(sub_id)
    assert sub["cancel_at_period_end"] is True and sub["status"] == "active"
    event = sandbox.events()[-1]
    assert event["type"] == "customer.subscription.updated"
    assert event["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert "Don't cancel</button>" in http().get(url).text
    http().post(f"{url}/renew", data={"subscription": sub_id})
    assert api.v1.subscriptions.retrieve(sub_id)["cancel_at_period_end"] is False


def test_portal_refuses_another_customers_subscription(api, paid_subscription):
    customer_id, _ = paid_subscription()
    _, other_sub = paid_subscription()
    answer = http().post(f"{portal_url(api, customer_id)}/cancel", data={"subscription": other_sub})
    assert answer.status_code == 404
    assert api.v1.subscriptions.retrieve(other_sub)["cancel_at_period_end"] is False


def test_portal_card_change_pays_a_past_due_subscription(sandbox, api, paid_subscription):
    customer_id, sub_id = paid_subscription()
    sandbox.fail_next_renewals(customer_id)
    sandbox.advance_clock(days=32)
    assert api.v1.subscriptions.retrieve(sub_id)["status"] == "past_due"
    url = portal_url(api, customer_id)
    assert "Payment failed" in http().get(url).text
    declined = http().post(f"{url}/card", data={"card_number": DECLINED_CARD})
    assert declined.status_code == 402 and "Your card was declined." in declined.text
    answer = http().post(f"{url}/card", data={"card_number": "5555555555554444"})
    assert answer.status_code == 200 and "Mastercard ending in 4444" in answer.text
    sub = api.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    assert sub["status"] == "active" and sub["latest_invoice"]["status"] == "paid"
    assert event_types(sandbox)[-5:] == [
        "payment_method.attached", "customer.updated", "invoice.paid",
        "invoice.payment_succeeded", "customer.subscription.updated"]


def test_invoice_page(api, paid_subscription):
    _, sub_id = paid_subscription()
    invoice = api.v1.invoices.retrieve(api.v1.subscriptions.retrieve(sub_id)["latest_invoice"])
    page = http().get(invoice["hosted_invoice_url"])
    assert page.status_code == 200 and re.search(r"Status: <strong>paid", page.text)
