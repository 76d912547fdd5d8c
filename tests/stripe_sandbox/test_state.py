"""The state file: a sandbox started again on the same file goes on where it stopped."""
from __future__ import annotations

import json
import threading

import pytest

from newsletter.stripe_sandbox import state
from tests.stripe_sandbox.conftest import GOOD_CARD, client, http, received_events

DAY = 86400


@pytest.fixture
def state_path(tmp_path):
    return tmp_path / "instance" / "stripe-sandbox.json"


def buy_membership(sandbox, email: str = "member@example.com") -> tuple[str, str]:
    """Product, price, Checkout and payment over HTTP; (customer id, subscription id)."""
    api = client(sandbox)
    product = api.v1.products.create(params={"name": "Community membership"})
    price = api.v1.prices.create(params={"product": product["id"], "unit_amount": 600,
                                         "currency": "usd", "recurring": {"interval": "month"}})
    session = api.v1.checkout.sessions.create(params={
        "mode": "subscription", "line_items": [{"price": price["id"], "quantity": 1}],
        "success_url": "http://127.0.0.1:9/welcome", "customer_email": email})
    paid = http().post(f"{sandbox.url}/_sandbox/checkout/{session['id']}/pay",
                       data={"card": GOOD_CARD})
    assert paid.status_code == 200, paid.text
    return paid.json()["customer"], paid.json()["subscription"]


def test_a_restarted_sandbox_goes_on_where_it_stopped(make_sandbox, receiver, state_path):
    first = make_sandbox(state_file=state_path)
    customer_id, sub_id = buy_membership(first)
    first.advance_clock(days=3)
    first.fail_next_renewals(sub_id, 1)   # private: the next charge fails
    first.wait_for_deliveries()
    kept = {object_id: first.get(object_id) for object_id in (customer_id, sub_id)}
    first_invoice = first.get(kept[sub_id]["latest_invoice"])
    old_ids, offset = set(first.store.objects), first.store.clock_offset
    events = first.events()
    first.stop()

    second = make_sandbox(state_file=state_path)
    api = client(second)
    assert api.v1.customers.retrieve(customer_id).to_dict() == kept[customer_id]
    assert api.v1.subscriptions.retrieve(sub_id)["status"] == "active"
    assert second.get(sub_id) == kept[sub_id]   # stripe-python makes decimals of some strings
    moved = json.dumps(events).replace(f"{first.url}/", f"{second.url}/")   # hosted pages
    assert second.events() == json.loads(moved) and second.store.clock_offset == offset
    invoice = api.v1.invoices.retrieve(first_invoice["id"])
    assert invoice["hosted_invoice_url"] == f"{second.url}/i/{invoice['id']}"
    portal = api.v1.billing_portal.sessions.create(params={
        "customer": customer_id, "return_url": "http://127.0.0.1:9/account"})
    assert http().get(portal["url"]).status_code == 200

    renews_at = kept[sub_id]["items"]["data"][0]["current_period_end"]
    second.advance_clock(until=renews_at + 3600)   # it fails, as the first sandbox was told
    renewal = api.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    assert renewal["status"] == "past_due"
    assert renewal["latest_invoice"]["number"] != first_invoice["number"]
    second.wait_for_deliveries()
    assert renewal["latest_invoice"]["id"] in {
        e["data"]["object"]["id"] for e in received_events(receiver)
        if e["type"] == "invoice.payment_failed"}

    new_ids = {*buy_membership(second, "another@example.com"), renewal["latest_invoice"]["id"]}
    assert not new_ids & old_ids and old_ids <= set(second.store.objects)


def test_every_change_is_in_the_file_when_it_ends(make_sandbox, state_path):
    sandbox = make_sandbox(state_file=state_path)
    customer = client(sandbox).v1.customers.create(params={"email": "r@example.com"})
    saved = json.loads(state_path.read_bytes())
    assert saved["format"] == state.FORMAT
    assert saved["objects"][customer["id"]]["email"] == "r@example.com"
    assert saved["events"][-1] == sandbox.events()[-1]["id"]


def test_reads_leave_the_file_alone(make_sandbox, state_path):
    sandbox = make_sandbox(state_file=state_path)
    customer_id, sub_id = buy_membership(sandbox)
    sandbox.wait_for_deliveries()
    written = state_path.stat()
    api = client(sandbox)
    api.v1.customers.retrieve(customer_id)
    api.v1.subscriptions.list(params={"customer": customer_id})
    assert http().get(f"{sandbox.url}/_sandbox/").status_code == 200
    sandbox.events()
    again = state_path.stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


@pytest.mark.parametrize("content", [
    b'{"format": 1, "objects": {"cus_1": {"id"',   # cut short
    b"\xff\xfe not even text",
    b'{"format": 99, "objects": {}}',               # a later sandbox's
    b'{"format": 1, "objects": {}}',                # parts missing
    b'{"format": 1, "objects": {"cus_1": {"id": "cus_2", "object": "customer"}}, '
    b'"private": {}, "events": [], "clock_offset": 0, "base_url": "http://127.0.0.1"}',
])
def test_an_unreadable_file_is_moved_aside_and_the_sandbox_starts_empty(make_sandbox, state_path,
                                                                          content, caplog):
    state_path.parent.mkdir(parents=True)
    state_path.write_bytes(content)
    sandbox = make_sandbox(state_file=state_path)
    aside = sandbox.state_file.set_aside
    assert aside.name.startswith("stripe-sandbox.json.broken-") and aside.read_bytes() == content
    assert sandbox.state_file.problem and "could not be read" in caplog.text
    assert client(sandbox).v1.customers.list().data == []
    client(sandbox).v1.customers.create(params={"email": "fresh@example.com"})
    assert len(json.loads(state_path.read_bytes())["objects"]) == 2   # the customer, its event


def test_the_file_always_parses_and_no_temporary_is_left(make_sandbox, state_path):
    sandbox = make_sandbox(state_file=state_path)
    api = client(sandbox)
    api.v1.customers.create(params={"email": "first@example.com"})
    failures, done = [], threading.Event()

    def read_while_written() -> None:
        while not done.is_set():
            try:
                json.loads(state_path.read_bytes())
            except ValueError as error:
                failures.append(error)

    reader = threading.Thread(target=read_while_written)
    reader.start()
    for number in range(40):
        api.v1.customers.create(params={"email": f"r{number}@example.com"})
    sandbox.wait_for_deliveries()   # each delivery is written down too
    done.set()
    reader.join()
    assert failures == []
    assert [path.name for path in state_path.parent.iterdir()] == ["stripe-sandbox.json"]
