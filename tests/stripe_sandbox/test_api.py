"""The API through stripe-python 16: resources, lists, expand, errors, auth, idempotency."""
from __future__ import annotations

import pytest
import requests
import stripe

from tests.stripe_sandbox.conftest import SECRET_KEY


def test_products_create_retrieve_update_list(api):
    product = api.v1.products.create(params={"name": "Membership", "metadata": {"k": "v"}})
    assert product["id"].startswith("prod_") and product["object"] == "product"
    assert product["livemode"] is False and product["metadata"]["k"] == "v"
    updated = api.v1.products.update(product["id"], params={
        "description": "Support us", "metadata": {"k": "", "other": "x"}})
    assert updated["description"] == "Support us" and updated.metadata.to_dict() == {"other": "x"}
    api.v1.products.create(params={"name": "Old", "active": False})
    active = api.v1.products.list(params={"active": True})
    assert [p["id"] for p in active.data] == [product["id"]]
    assert api.v1.products.retrieve(product["id"])["name"] == "Membership"


def test_prices_lookup_keys_and_transfer(api, make_price):
    first = make_price(lookup_key="membership_monthly")
    assert first["id"].startswith("price_") and first["recurring"]["interval"] == "month"
    assert first["type"] == "recurring" and str(first["unit_amount_decimal"]) == "500"
    found = api.v1.prices.list(params={"lookup_keys": ["membership_monthly"]})
    assert [p["id"] for p in found.data] == [first["id"]]
    with pytest.raises(stripe.InvalidRequestError) as taken:
        make_price(lookup_key="membership_monthly")
    assert taken.value.param == "lookup_key"
    second = make_price(lookup_key="membership_monthly", transfer_lookup_key=True)
    assert api.v1.prices.retrieve(first["id"])["lookup_key"] is None
    found = api.v1.prices.list(params={"lookup_keys": ["membership_monthly"], "active": True})
    assert [p["id"] for p in found.data] == [second["id"]]


def test_price_update_and_list_by_product(api, make_price):
    price = make_price()
    updated = api.v1.prices.update(price["id"], params={"active": False, "nickname": "Monthly"})
    assert updated["active"] is False and updated["nickname"] == "Monthly"
    listed = api.v1.prices.list(params={"product": price["product"]})
    assert [p["id"] for p in listed.data] == [price["id"]]


def test_customers_and_pagination(api):
    ids = [api.v1.customers.create(params={"email": f"r{i}@example.com"})["id"] for i in range(3)]
    assert all(i.startswith("cus_") for i in ids)
    first_page = api.v1.customers.list(params={"limit": 2})
    assert [c["id"] for c in first_page.data] == ids[::-1][:2] and first_page.has_more
    rest = api.v1.customers.list(params={"limit": 2, "starting_after": ids[1]})
    assert [c["id"] for c in rest.data] == [ids[0]] and not rest.has_more
    by_email = api.v1.customers.list(params={"email": "r1@example.com"})
    assert [c["id"] for c in by_email.data] == [ids[1]]
    renamed = api.v1.customers.update(ids[0], params={"name": "Ada"})
    assert renamed["name"] == "Ada"


def test_checkout_session_shape_and_expand(sandbox, api, make_session):
    session = make_session(client_reference_id="reader-1", customer_email="a@example.com",
                           subscription_data={"metadata": {"reader_id": "reader-1"}},
                           metadata={"source": "test"}, allow_promotion_codes=True)
    assert session["id"].startswith("cs_test_") and session["object"] == "checkout.session"
    assert session["url"] == f"{sandbox.url}/c/pay/{session['id']}"
    assert (session["status"], session["payment_status"]) == ("open", "unpaid")
    assert session["amount_total"] == 500 and session["currency"] == "eur"
    sandbox.pay_checkout(session["id"])
    done = api.v1.checkout.sessions.retrieve(session["id"], params={
        "expand": ["subscription", "customer", "line_items"]})
    assert done["status"] == "complete" and done["payment_status"] == "paid"
    assert done["subscription"]["metadata"]["reader_id"] == "reader-1"
    assert done["customer"]["email"] == "a@example.com"
    assert done["customer_details"]["email"] == "a@example.com"
    assert done["line_items"]["data"][0]["quantity"] == 1
    listed = api.v1.checkout.sessions.list(params={"customer": done["customer"]["id"]})
    assert [s["id"] for s in listed.data] == [session["id"]]


def test_checkout_session_expire(api, make_session):
    session = make_session()
    expired = api.v1.checkout.sessions.expire(session["id"])
    assert expired["status"] == "expired" and expired["url"] is None
    with pytest.raises(stripe.InvalidRequestError):
        api.v1.checkout.sessions.expire(session["id"])


def test_subscription_shape(api, paid_subscription):
    customer_id, sub_id = paid_subscription()
    sub = api.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    assert sub["id"].startswith("sub_") and sub["status"] == "active"
    assert sub["customer"] == customer_id and sub["cancel_at_period_end"] is False
    item = sub["items"]["data"][0]
    assert item["current_period_end"] > item["current_period_start"] == sub["start_date"]
    invoice = sub["latest_invoice"]
    assert invoice["id"].startswith("in_") and invoice["status"] == "paid"
    assert invoice["parent"]["subscription_details"]["subscription"] == sub_id
    assert invoice["billing_reason"] == "subscription_create" and invoice["amount_paid"] == 500
    listed = api.v1.invoices.list(params={"subscription": sub_id})
    assert [i["id"] for i in listed.data] == [invoice["id"]]
    subs = api.v1.subscriptions.list(params={"customer": customer_id, "status": "active"})
    assert [s["id"] for s in subs.data] == [sub_id]


def test_subscription_update_and_cancel(sandbox, api, paid_subscription):
    _, sub_id = paid_subscription()
    pending = api.v1.subscriptions.update(sub_id, params={"cancel_at_period_end": True,
                                                          "metadata": {"note": "x"}})
    assert pending["cancel_at_period_end"] is True and pending["cancel_at"] is not None
    updated = sandbox.events("customer.subscription.updated")[-1]
    assert updated["data"]["previous_attributes"]["cancel_at_period_end"] is False
    canceled = api.v1.subscriptions.cancel(sub_id)
    assert canceled["status"] == "canceled" and canceled["ended_at"] is not None
    assert sandbox.events()[-1]["type"] == "customer.subscription.deleted"
    assert api.v1.subscriptions.list(params={"status": "active"}).data == []
    assert [s["id"] for s in api.v1.subscriptions.list(params={"status": "all"}).data] == [sub_id]


def test_portal_session(sandbox, api, paid_subscription):
    customer_id, _ = paid_subscription()
    portal = api.v1.billing_portal.sessions.create(params={
        "customer": customer_id, "return_url": "http://127.0.0.1:9/account"})
    assert portal["id"].startswith("bps_") and portal["object"] == "billing_portal.session"
    assert portal["url"] == f"{sandbox.url}/p/session/{portal['id']}"


def test_events_retrieve_and_list(sandbox, api, make_price):
    make_price()
    listed = api.v1.events.list(params={"type": "price.created"})
    assert len(listed.data) == 1 and listed.data[0]["api_version"] == "2026-10-28.endive"
    event = api.v1.events.retrieve(listed.data[0]["id"])
    assert event["id"].startswith("evt_") and event["data"]["object"]["object"] == "price"
    assert event["request"]["idempotency_key"] is not None


@pytest.mark.parametrize("call, param", [
    (lambda api: api.v1.products.create(params={"name": "x", "foo": "1"}), "foo"),
    (lambda api: api.v1.customers.list(params={"emial": "x"}), "emial"),
    (lambda api: api.v1.checkout.sessions.create(params={
        "mode": "subscription", "subscription_data": {"trial_days": 3}}),
     "subscription_data[trial_days]"),
])
def test_unknown_parameters_are_400(api, call, param):
    with pytest.raises(stripe.InvalidRequestError) as error:
        call(api)
    assert error.value.http_status == 400 and error.value.param == param
    assert error.value.code == "parameter_unknown"
    assert error.value.user_message == f"Received unknown parameter: {param}"


def test_bad_values_and_missing_ones(api, make_price):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        api.v1.products.create(params={"description": "no name"})
    assert (missing.value.param, missing.value.code) == ("name", "parameter_missing")
    with pytest.raises(stripe.InvalidRequestError) as not_int:
        api.v1.prices.create(params={"product": "prod_x", "unit_amount": "five", "currency": "eur"})
    assert not_int.value.param == "unit_amount"
    with pytest.raises(stripe.InvalidRequestError) as mode:
        api.v1.checkout.sessions.create(params={"mode": "payment", "line_items": [
            {"price": make_price()["id"]}]})
    assert mode.value.param == "mode"


def test_checkout_needs_an_active_recurring_price(api, make_price):
    one_time = api.v1.prices.create(params={"product": make_price()["product"],
                                            "unit_amount": 100, "currency": "eur"})
    retired = api.v1.prices.update(make_price()["id"], params={"active": False})
    for price in (one_time, retired):
        with pytest.raises(stripe.InvalidRequestError) as error:
            api.v1.checkout.sessions.create(params={
                "mode": "subscription", "line_items": [{"price": price["id"]}]})
        assert error.value.param == "line_items[0][price]"


def test_unknown_ids_are_404(api):
    with pytest.raises(stripe.InvalidRequestError) as error:
        api.v1.subscriptions.retrieve("sub_nope")
    assert error.value.http_status == 404 and error.value.code == "resource_missing"
    assert error.value.user_message == "No such subscription: 'sub_nope'"


def test_authentication(sandbox):
    with pytest.raises(stripe.AuthenticationError) as wrong:
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": sandbox.url}
                            ).v1.products.list()
    assert wrong.value.http_status == 401
    bare = requests.get(f"{sandbox.url}/v1/products")
    assert bare.status_code == 401
    assert bare.json()["error"]["type"] == "invalid_request_error"
    basic = requests.get(f"{sandbox.url}/v1/products", auth=(SECRET_KEY, ""))
    assert basic.status_code == 200 and basic.json()["object"] == "list"


def test_unrecognized_url(sandbox):
    answer = requests.get(f"{sandbox.url}/v1/nothing",
                          headers={"Authorization": f"Bearer {SECRET_KEY}"})
    assert answer.status_code == 404
    assert answer.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/nothing)")


def test_idempotency(sandbox, api, make_price):
    price = make_price()
    params = {"mode": "subscription", "line_items": [{"price": price["id"]}]}
    first = api.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k1"})
    again = api.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k1"})
    assert again["id"] == first["id"]
    assert len(api.v1.checkout.sessions.list().data) == 1
    with pytest.raises(stripe.IdempotencyError):
        api.v1.checkout.sessions.create(params={**params, "client_reference_id": "other"},
                                        options={"idempotency_key": "k1"})


def test_bracket_forms_from_other_clients(sandbox, make_price):
    price = make_price()
    answer = requests.post(f"{sandbox.url}/v1/checkout/sessions", headers={
        "Authorization": f"Bearer {SECRET_KEY}", "Stripe-Version": "2026-10-28.endive"}, data={
        "mode": "subscription", "line_items[0][price]": price["id"],
        "line_items[0][quantity]": "2", "subscription_data[metadata][reader_id]": "r9",
        "expand[]": "customer"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Stripe-Version"] == "2026-10-28.endive"
    assert answer.json()["amount_total"] == 1000


def test_concurrent_requests(api, make_price):
    from concurrent.futures import ThreadPoolExecutor

    price = make_price()

    def create(i):
        return api.v1.checkout.sessions.create(params={
            "mode": "subscription", "line_items": [{"price": price["id"]}],
            "client_reference_id": str(i)})["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(create, range(40)))
    assert len(set(ids)) == 40
    assert len(api.v1.checkout.sessions.list(params={"limit": 100}).data) == 40
