"""The per-variant report: counters from Redis, conversions from membership rows."""
from __future__ import annotations

import secrets

import pytest

from newsletter import memberships, prompt_history, prompt_report
from newsletter.models import Membership
from newsletter.prompt_rules import parse_rules

RULES = parse_rules({"version": "r7", "prompts": [
    {"id": "appeal", "kind": "membership",
     "experiment": {"name": "exp", "control_share": 0.1, "variants": [{"id": "exp:a"}, {"id": "exp:b"}]}}]})


def membership(session, variant: str | None, status: str = "active", reader_id: str | None = None,
               path: str = "click") -> str:
    """A Reader and a Membership row as the webhook leaves them after a checkout. Flushes only."""
    reader_id = reader_id or memberships.new_reader(session, f"{secrets.token_hex(4)}@example.com").id
    session.add(Membership(reader_id=reader_id, stripe_subscription_id=f"sub_{secrets.token_hex(6)}",
                           status=status, prompt="membership" if variant else None, prompt_variant=variant,
                           prompt_path=path if variant else None))
    session.flush()
    return reader_id


def assign(broker, variant: str, readers: int) -> None:
    for n in range(readers):
        prompt_history.record_event(broker, f"{variant}-{n}", "assigned", variant)


def test_conversions_count_paying_readers_once_per_variant(session):
    twice = membership(session, "exp:a")
    membership(session, "exp:a", "canceled", reader_id=twice)  # the same reader again
    membership(session, "exp:a", "past_due")
    membership(session, "exp:a", "incomplete_expired")  # never paid
    membership(session, "exp:b")
    membership(session, None)
    membership(session, "gate")
    assert prompt_report.conversions_by_variant(session) == {"exp:a": 2, "exp:b": 1, "gate": 1}
    assert prompt_report.other_conversions(session, RULES) == {"gate": 1}


def test_conversions_of_readers_not_counted_are_listed_apart_from_the_rates(session, broker):
    assign(broker, "exp:a", 10)
    membership(session, "exp:a")
    membership(session, "exp:a", path=memberships.UNCOUNTED)
    membership(session, "exp:a", path=memberships.UNCOUNTED)
    rows = {row.variant: row for row in prompt_report.report(session, broker, RULES)}
    assert (rows["exp:a"].conversions, rows["exp:a"].rate) == (1, pytest.approx(0.1))
    assert prompt_report.other_conversions(session, RULES) == {"exp:a (readers not counted)": 2}


def test_the_rate_never_passes_its_interval(session, broker):
    # Distinct readers are HyperLogLog estimates: conversions may come out above them.
    assign(broker, "exp:a", 1)
    for _ in range(3):
        membership(session, "exp:a")
    row = next(r for r in prompt_report.report(session, broker, RULES) if r.variant == "exp:a")
    assert (row.conversions, row.rate, row.high) == (3, 1.0, 1.0) and row.low <= row.rate


def test_the_report_has_a_row_per_variant_and_the_control(session, broker):
    assign(broker, "exp:a", 40)
    assign(broker, "exp:control", 5)
    for _ in range(4):
        membership(session, "exp:a")
    prompt_history.record_event(broker, "exp:a-0", "click", "exp:a")
    rows = prompt_report.report(session, broker, RULES)
    assert [(r.variant, r.control) for r in rows] == [("exp:control", True), ("exp:a", False), ("exp:b", False)]
    a = rows[1]
    assert (a.readers, a.clicks, a.click_readers, a.conversions) == (40, 1, 1, 4)
    assert a.rate == pytest.approx(0.1)
    assert a.low == pytest.approx(0.0396, abs=1e-3) and a.high == pytest.approx(0.2304, abs=1e-3)
    document = prompt_report.as_json(RULES, rows, {})
    assert document["rules_version"] == "r7" and document["variants"][1]["conversions"] == 4
    assert document["variants"][1]["clicks_converted"] == 4


def test_every_conversion_counts_for_the_readers_bucket_clicked_or_not(session, broker):
    assign(broker, "exp:control", 20)
    assign(broker, "exp:a", 20)
    for _ in range(2):
        membership(session, "exp:control", path="assigned")  # the join page, a control reader
    membership(session, "exp:a", path="assigned")  # shown the appeal, joined through the gate
    membership(session, "exp:a")
    rows = {row.variant: row for row in prompt_report.report(session, broker, RULES)}
    control, a = rows["exp:control"], rows["exp:a"]
    assert (control.conversions, control.clicks_converted, control.rate) == (2, 0, pytest.approx(0.1))
    assert control.low > 0
    assert (a.conversions, a.clicks_converted) == (2, 1)
    assert prompt_report.conversions_by_variant(session, "click") == {"exp:a": 1}


@pytest.mark.parametrize("successes, trials, low, high", [
    (0, 0, 0.0, 0.0), (0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (12, 10, 0.7225, 1.0),
])
def test_wilson_interval(successes, trials, low, high):
    got = prompt_report.wilson_interval(successes, trials)
    assert got == pytest.approx((low, high), abs=1e-4)
