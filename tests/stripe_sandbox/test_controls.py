"""The /_sandbox/ controls over HTTP, as a browser test or a developer drives them."""
from __future__ import annotations

from tests.stripe_sandbox.conftest import http


def control(sandbox, path, **data):
    return http().post(f"{sandbox.url}/_sandbox/{path}", data=data)


def test_clock_advance(sandbox):
    before = http().get(f"{sandbox.url}/_sandbox/clock").json()["now"]
    moved = control(sandbox, "clock/advance", days="2", hours="12")
    assert moved.status_code == 200 and moved.json()["now"] >= before + 2.5 * 86400
    assert control(sandbox, "clock/advance", days="soon").status_code == 400
    assert control(sandbox, "clock/advance", until=str(before)).status_code == 400


def test_json_bodies_work_too(sandbox):
    before = sandbox.now()
    moved = http().post(f"{sandbox.url}/_sandbox/clock/advance", json={"days": 1})
    assert moved.json()["now"] >= before + 86400


def test_failing_renewals_then_a_new_card(sandbox, api, paid_subscription):
    customer_id, sub_id = paid_subscription()
    assert control(sandbox, "fail_next_renewals", id=sub_id).json() == {"id": sub_id,
                                                                         "count": None}
    control(sandbox, "clock/advance", days="31")
    assert api.v1.subscriptions.retrieve(sub_id)["status"] == "past_due"
    declined = control(sandbox, f"customers/{customer_id}/card", card="4000000000000002")
    assert declined.status_code == 402
    assert declined.json()["error"]["decline_code"] == "generic_decline"
    card = control(sandbox, f"customers/{customer_id}/card", card="4242424242424242")
    assert card.status_code == 200 and card.json()["card"]["last4"] == "4242"
    assert api.v1.subscriptions.retrieve(sub_id)["status"] == "active"


def test_unknown_ids_are_404(sandbox):
    assert control(sandbox, "fail_next_renewals", id="cus_nope").status_code == 404
    assert control(sandbox, "customers/cus_nope/card", card="4242424242424242").status_code == 404
    assert control(sandbox, "fail_next_renewals").status_code == 400


def test_pay_checkout_and_deliveries(sandbox, make_session):
    session = make_session(customer_email="a@example.com")
    paid = control(sandbox, f"checkout/{session['id']}/pay")
    assert paid.status_code == 200 and paid.json()["status"] == "complete"
    assert control(sandbox, f"checkout/{session['id']}/pay").status_code == 400
    assert control(sandbox, "deliveries/wait", timeout="5").status_code == 200
    deliveries = http().get(f"{sandbox.url}/_sandbox/deliveries").json()["data"]
    assert {"event_id", "event_type", "http_status", "attempt"} <= set(deliveries[0])


def test_set_webhook(sandbox, receiver):
    answer = control(sandbox, "webhook", url=receiver.url)
    assert answer.status_code == 200 and answer.json()["secret"] == sandbox.webhook_secret


def test_dev_makes_the_plan_and_names_the_sandbox():
    import stripe

    from newsletter.billing import Plan
    from newsletter.stripe_sandbox import Sandbox, dev

    with Sandbox() as running:
        ids = dev.make_plan(running, Plan("Community membership", "usd", 600))
        env = dev.app_env(running)
        api = stripe.StripeClient(env["NEWSLETTER_STRIPE_SECRET_KEY"],
                                  base_addresses={"api": env["NEWSLETTER_STRIPE_API_BASE"]})
        prices = api.v1.prices.list(params={"lookup_keys": ["community_monthly"]}).data
        assert [p["id"] for p in prices] == [ids["month"]] and prices[0]["unit_amount"] == 600
        assert env["NEWSLETTER_STRIPE_WEBHOOK_SECRET"] == running.webhook_secret


def test_dashboard_and_its_forms(sandbox, paid_subscription):
    customer_id, sub_id = paid_subscription()
    sandbox.wait_for_deliveries()
    page = http().get(f"{sandbox.url}/_sandbox/")
    assert page.status_code == 200 and sub_id in page.text and "reader@example.com" in page.text
    assert "customer.subscription.created" in page.text and ">Advance clock</button>" in page.text
    failed = control(sandbox, "fail_next_renewals", id=sub_id, next="/_sandbox/")
    assert failed.status_code == 200 and failed.url.endswith("/_sandbox/")
    moved = http().post(f"{sandbox.url}/_sandbox/clock/advance",
                        data={"days": "31", "next": "/_sandbox/"}, allow_redirects=False)
    assert moved.status_code == 303 and moved.headers["Location"].endswith("/_sandbox/")
    assert sandbox.get(sub_id)["status"] == "past_due"
