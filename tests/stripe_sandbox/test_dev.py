"""`dev.make_plan` on a sandbox that kept its state: the same product and price, no copies."""
from __future__ import annotations

from newsletter.billing import Plan
from newsletter.stripe_sandbox import dev
from tests.stripe_sandbox.conftest import client

PLAN = Plan(name="Community membership", currency="usd", monthly_amount=600, annual_amount=6000)


def test_make_plan_after_a_restart_makes_nothing_new(make_sandbox, tmp_path):
    first = make_sandbox(state_file=tmp_path / "stripe-sandbox.json")
    made = dev.make_plan(first, PLAN)
    first.stop()

    second = make_sandbox(state_file=tmp_path / "stripe-sandbox.json")
    assert dev.make_plan(second, PLAN) == made
    api = client(second)
    assert [p["id"] for p in api.v1.products.list().data] == [made["product"]]
    assert {p["id"] for p in api.v1.prices.list().data} == {made["month"], made["year"]}
