"""Moving time: renewals that succeed or fail, retries, the end after them, trials, period ends."""
from __future__ import annotations

import pytest

from newsletter.stripe_sandbox import CardDeclined
from tests.stripe_sandbox.conftest import event_types

FAILING_LATER_CARD = "4000000000000341"
DAY = 86400


def period(sub):
    item = sub["items"]["data"][0]
    return item["current_period_start"], item["current_period_end"]


def test_renewal_that_succeeds(sandbox, api, paid_subscription):
    _, sub_id = paid_subscription()
    first = api.v1.subscriptions.retrieve(sub_id)
    seen = len(sandbox.events())
    sandbox.advance_clock(days=31)
    sub = api.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    assert sub["status"] == "active" and period(sub)[0] == period(first)[1]
    assert sub["latest_invoice"]["billing_reason"] == "subscription_cycle"
    assert sub["latest_invoice"]["status"] == "paid"
    assert event_types(sandbox, seen) == [
        "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded",
        "customer.subscription.updated"]
    assert len(api.v1.invoices.list(params={"subscription": sub_id}).data) == 2


def test_monthly_periods_keep_the_anchor_day():
    from datetime import datetime, timezone

    from newsletter.stripe_sandbox.subscriptions import add_interval

    def stamp(*date):
        return int(datetime(*date, tzinfo=timezone.utc).timestamp())

    assert add_interval(stamp(2027, 1, 31), "month", 1, 31) == stamp(2027, 2, 28)
    assert add_interval(stamp(2027, 2, 28), "month", 1, 31) == stamp(2027, 3, 31)
    assert add_interval(stamp(2028, 2, 29), "year", 1, 29) == stamp(2029, 2, 28)
    assert add_interval(stamp(2027, 1, 1), "week", 2) == stamp(2027, 1, 15)


def test_an_annual_subscription_renews_a_year_later(sandbox, api, make_price, paid_subscription):
    _, sub_id = paid_subscription(price=make_price(unit_amount=6000, interval="year"))
    start, end = period(api.v1.subscriptions.retrieve(sub_id))
    assert a_year_after(start) == end
    sandbox.advance_clock(until=end - 1)  # past every month's end: nothing is due yet
    assert len(api.v1.invoices.list(params={"subscription": sub_id}).data) == 1
    sandbox.advance_clock(until=end)
    sub = api.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    assert sub["status"] == "active" and period(sub) == (end, a_year_after(end))
    invoice = sub["latest_invoice"]
    assert (invoice["billing_reason"], invoice["status"], invoice["amount_paid"]) == ("subscription_cycle", "paid", 6000)
    line = invoice["lines"]["data"][0]
    assert (line["period"]["start"], line["period"]["end"]) == (end, a_year_after(end))


def a_year_after(timestamp: int) -> int:
    """The same day and time next year (28 February after a 29th)."""
    from calendar import isleap
    from datetime import datetime, timezone

    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    leap_day = (moment.month, moment.day) == (2, 29) and not isleap(moment.year + 1)
    return int(moment.replace(year=moment.year + 1, day=28 if leap_day else moment.day).timestamp())


def test_several_periods_in_one_move(sandbox, api, paid_subscription):
    _, sub_id = paid_subscription()
    sandbox.advance_clock(days=95)
    assert len(api.v1.invoices.list(params={"subscription": sub_id}).data) == 4
    assert period(api.v1.subscriptions.retrieve(sub_id))[1] > sandbox.now()


def test_failed_renewal_goes_past_due_then_canceled_after_the_retries(sandbox, api,
                                                                       paid_subscription):
    _, sub_id = paid_subscription()
    renewal_at = period(api.v1.subscriptions.retrieve(sub_id))[1]
    sandbox.fail_next_renewals(sub_id)
    sandbox.advance_clock(until=renewal_at)
    sub = api.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    assert sub["status"] == "past_due"
    invoice = sub["latest_invoice"]
    assert invoice["status"] == "open" and invoice["attempt_count"] == 1
    assert invoice["next_payment_attempt"] == renewal_at + 3 * DAY
    updated = sandbox.events("customer.subscription.updated")[-1]
    assert updated["data"]["previous_attributes"]["status"] == "active"
    sandbox.advance_clock(until=renewal_at + 15 * DAY - 1)
    assert api.v1.subscriptions.retrieve(sub_id)["status"] == "past_due"   # retried at +3, +8
    sandbox.advance_clock(until=renewal_at + 15 * DAY)                      # the last, at +15
    sub = api.v1.subscriptions.retrieve(sub_id)
    assert sub["status"] == "canceled"
    assert sub["cancellation_details"]["reason"] == "payment_failed"
    assert event_types(sandbox).count("invoice.payment_failed") == 4
    assert event_types(sandbox)[-1] == "customer.subscription.deleted"


def test_after_retries_unpaid_when_configured(make_sandbox):
    sandbox = make_sandbox(after_failed_retries="unpaid", payment_retry_days=(1,))
    customer_id, sub_id = _checkout(sandbox)
    sandbox.fail_next_renewals(customer_id)
    sandbox.advance_clock(days=33)
    assert sandbox.get(sub_id)["status"] == "unpaid"
    sandbox.set_card(customer_id, "4242424242424242")
    assert sandbox.get(sub_id)["status"] == "active"


def test_a_retry_that_succeeds(sandbox, api, paid_subscription):
    customer_id, sub_id = paid_subscription()
    sandbox.fail_next_renewals(customer_id, count=1)
    sandbox.advance_clock(days=31)
    assert api.v1.subscriptions.retrieve(sub_id)["status"] == "past_due"
    sandbox.advance_clock(days=3)
    sub = api.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    assert sub["status"] == "active" and sub["latest_invoice"]["attempt_count"] == 2


def test_card_whose_charges_fail(sandbox, api, paid_subscription):
    customer_id, sub_id = paid_subscription()
    sandbox.set_card(customer_id, FAILING_LATER_CARD)
    sandbox.advance_clock(days=31)
    assert api.v1.subscriptions.retrieve(sub_id)["status"] == "past_due"
    with pytest.raises(CardDeclined):
        sandbox.set_card(customer_id, "4000000000000002")


def test_trial_converts_to_active(sandbox, api, paid_subscription):
    _, sub_id = paid_subscription(subscription_data={"trial_period_days": 7})
    assert api.v1.subscriptions.retrieve(sub_id)["status"] == "trialing"
    sandbox.advance_clock(days=4)
    assert event_types(sandbox)[-1] == "customer.subscription.trial_will_end"
    sandbox.advance_clock(days=3)
    sub = api.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    assert sub["status"] == "active" and sub["latest_invoice"]["amount_paid"] == 500
    updated = sandbox.events("customer.subscription.updated")[-1]
    assert updated["data"]["previous_attributes"]["status"] == "trialing"
    assert event_types(sandbox).count("customer.subscription.trial_will_end") == 1


def test_trial_with_a_card_that_fails_goes_past_due(sandbox, api, paid_subscription):
    _, sub_id = paid_subscription(card=FAILING_LATER_CARD,
                                  subscription_data={"trial_period_days": 7})
    assert api.v1.subscriptions.retrieve(sub_id)["status"] == "trialing"
    sandbox.advance_clock(days=7)
    assert api.v1.subscriptions.retrieve(sub_id)["status"] == "past_due"


def test_failing_card_without_trial_is_declined_at_checkout(sandbox, make_session):
    session = make_session(customer_email="x@example.com")
    with pytest.raises(CardDeclined):
        sandbox.pay_checkout(session["id"], card=FAILING_LATER_CARD)


def test_cancel_at_period_end_ends_at_period_end(sandbox, api, paid_subscription):
    _, sub_id = paid_subscription()
    api.v1.subscriptions.update(sub_id, params={"cancel_at_period_end": True})
    sandbox.advance_clock(days=20)
    assert api.v1.subscriptions.retrieve(sub_id)["status"] == "active"
    sandbox.advance_clock(days=12)
    sub = api.v1.subscriptions.retrieve(sub_id)
    assert sub["status"] == "canceled" and sub["ended_at"] == period(sub)[1]
    assert event_types(sandbox)[-1] == "customer.subscription.deleted"
    assert len(api.v1.invoices.list(params={"subscription": sub_id}).data) == 1


def test_open_sessions_expire(sandbox, api, make_session):
    session = make_session()
    sandbox.advance_clock(days=1, seconds=1)
    assert api.v1.checkout.sessions.retrieve(session["id"])["status"] == "expired"
    assert event_types(sandbox)[-1] == "checkout.session.expired"


def test_clock_only_moves_forward(sandbox):
    with pytest.raises(ValueError):
        sandbox.advance_clock(days=-1)


def _checkout(sandbox):
    import stripe

    api = stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url})
    product = api.v1.products.create(params={"name": "M"})
    price = api.v1.prices.create(params={"product": product["id"], "unit_amount": 300,
                                         "currency": "eur", "recurring": {"interval": "month"}})
    session = api.v1.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": price["id"]}],
        "customer_email": "u@example.com"})
    done = sandbox.pay_checkout(session["id"])
    return done["customer"], done["subscription"]
