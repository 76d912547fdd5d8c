"""Who is a member, and which mail each change of a subscription calls for."""
from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta, timezone

import pytest
import redis
from sqlalchemy import select

from newsletter import memberships, prompt_history
from newsletter.mailcatcher import free_port
from newsletter.models import Membership, Reader, StripeEvent
from newsletter.prompt_rules import parse_rules
from newsletter.prompts import Decision

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def make_membership(session, status: str = "active", email: str | None = None, reader_id: str | None = None,
                    **values) -> Membership:
    """A Membership row (with a new reader unless `reader_id` names one). Flushes only."""
    if reader_id is None:
        reader_id = memberships.new_reader(session, email).id
    row = Membership(reader_id=reader_id, stripe_subscription_id=f"sub_{secrets.token_hex(6)}",
                     status=status, **values)
    session.add(row)
    session.flush()
    return row


@pytest.mark.parametrize("status, expected", [
    ("active", "member"), ("trialing", "member"), ("canceled", "none"), ("unpaid", "none"),
    ("incomplete_expired", "none"), ("incomplete", "none"),
])
def test_state_of_each_status(session, status, expected):
    row = make_membership(session, status=status)
    assert memberships.reader_state(session, row.reader_id, NOW, grace_days=7) == expected


def test_past_due_is_a_member_for_the_grace_period_only(session):
    row = make_membership(session, status="past_due", past_due_since=NOW - timedelta(days=6))
    assert memberships.reader_state(session, row.reader_id, NOW, 7) == "past_due"
    assert memberships.reader_state(session, row.reader_id, NOW + timedelta(days=2), 7) == "none"


def test_any_live_subscription_makes_a_member(session):
    ended = make_membership(session, "canceled")
    make_membership(session, "active", reader_id=ended.reader_id)
    assert memberships.reader_state(session, ended.reader_id, NOW, 7) == "member"
    assert memberships.reader_state(session, None, NOW, 7) == "none"
    assert memberships.reader_state(session, "nobody", NOW, 7) == "none"


def test_member_emails_lists_members_and_readers_in_grace(session):
    make_membership(session, "active", "member@example.com")
    make_membership(session, "canceled", "former@example.com")
    make_membership(session, "past_due", "late@example.com", past_due_since=NOW - timedelta(days=1))
    make_membership(session, "past_due", "lapsed@example.com", past_due_since=NOW - timedelta(days=8))
    make_membership(session, "active")  # no address yet: not on any list
    assert memberships.member_emails(session, NOW, 7) == {"member@example.com", "late@example.com"}


@pytest.mark.parametrize("status, notified, notice", [
    ("active", None, "welcome"), ("trialing", None, "welcome"), ("active", "welcome", None),
    ("past_due", "welcome", "payment_failed"), ("past_due", "payment_failed", None),
    ("active", "payment_failed", "recovered"),
    ("canceled", "welcome", "ended"), ("unpaid", "payment_failed", "ended"), ("canceled", "ended", None),
    ("incomplete_expired", None, None), ("incomplete", None, None),
])
def test_notice_for_each_change(status, notified, notice):
    assert memberships.notice_for(status, notified) == notice


def test_attribution_metadata_is_short_and_skips_empty_values():
    meta = memberships.Attribution(prompt="membership", variant="v" * 300).metadata("r1")
    assert meta == {"reader_id": "r1", "prompt": "membership", "prompt_variant": "v" * 100}
    assigned = memberships.Attribution(prompt="membership", variant="exp:control", path="assigned")
    assert assigned.metadata("r1")["prompt_path"] == "assigned"
    assert set(assigned.metadata("r1")) <= set(memberships.METADATA_KEYS)


def test_an_attribution_holds_no_nul():
    # The checkout form's values come back from Stripe for the task that stores the membership,
    # and PostgreSQL refuses NUL in text: a paid membership would stay unwritten.
    posted = memberships.Attribution(prompt="member\x00ship", variant="\x00exp:a", article="story\x00")
    assert posted == memberships.Attribution(prompt="membership", variant="exp:a", article="story")
    assert "\x00" not in "".join(posted.metadata("r1").values())


# ---------------------------------------------------------------- attribution at checkout (a real Redis)

RULES = parse_rules({"version": "a", "prompts": [
    {"id": "daily", "kind": "newsletter", "priority": 90},
    {"id": "appeal", "kind": "membership", "priority": 50,
     "experiment": {"name": "exp", "control_share": 0.5, "variants": [{"id": "exp:a"}]}},
    {"id": "old-appeal", "kind": "membership", "priority": 10}]})
READER = "a" * 32
APPEAL_FORM = memberships.Attribution(prompt="membership", variant="exp:a", article="story-3")
JOIN_PAGE = memberships.Attribution(prompt="membership")
GATE = memberships.Attribution(prompt="gate", variant="gate", article="for-members")


def assign(broker, reader_id: str, decision: Decision) -> None:
    prompt_history.record_decision(broker, reader_id, decision, NOW, 31)


def test_a_form_naming_a_variant_of_the_rules_is_a_click_whatever_the_readers_bucket(broker):
    assign(broker, READER, Decision(prompt=RULES.prompts[1], control=True))
    got = memberships.checkout_attribution(APPEAL_FORM, RULES, broker, READER)
    assert got == memberships.Attribution("membership", "exp:a", "story-3", path="click")


def test_an_appeals_click_from_a_reader_not_counted_is_outside_the_experiment(broker):
    got = memberships.checkout_attribution(APPEAL_FORM, RULES, broker, None)
    assert got == memberships.Attribution("membership", "exp:a", "story-3", path=memberships.UNCOUNTED)


@pytest.mark.parametrize("posted", [JOIN_PAGE, GATE], ids=["join page", "gate"])
def test_any_other_checkout_goes_to_the_readers_bucket_the_control_too(broker, posted):
    assign(broker, READER, Decision(prompt=RULES.prompts[0]))  # a newsletter prompt: not a membership's
    assign(broker, READER, Decision(prompt=RULES.prompts[2]))
    assign(broker, READER, Decision(prompt=RULES.prompts[1], control=True))
    got = memberships.checkout_attribution(posted, RULES, broker, READER)
    assert got == memberships.Attribution("membership", "exp:control", posted.article, path="assigned")


def test_the_highest_membership_prompt_the_reader_has_a_bucket_of(broker):
    assign(broker, READER, Decision(prompt=RULES.prompts[2]))
    assert memberships.checkout_attribution(JOIN_PAGE, RULES, broker, READER).variant == "old-appeal"


@pytest.mark.parametrize("reader_id", [None, "f" * 32], ids=["no reader id", "a reader never assigned"])
def test_without_a_bucket_the_form_stays_as_it_is(broker, reader_id):
    assert memberships.checkout_attribution(JOIN_PAGE, RULES, broker, reader_id) == JOIN_PAGE
    gate = memberships.checkout_attribution(GATE, RULES, broker, reader_id)
    assert gate == memberships.Attribution("gate", "gate", "for-members", path="click")
    assert memberships.checkout_attribution(JOIN_PAGE, RULES, None, READER) == JOIN_PAGE  # no Redis configured


def test_when_redis_does_not_answer_the_form_stays_and_a_warning_is_logged(caplog):
    nobody_listens = redis.Redis(port=free_port(), socket_timeout=0.5, socket_connect_timeout=0.5)
    with caplog.at_level(logging.WARNING, logger="newsletter.memberships"):
        got = memberships.checkout_attribution(JOIN_PAGE, RULES, nobody_listens, READER)
    assert got == JOIN_PAGE
    assert "Redis did not answer" in caplog.text


def test_when_redis_refuses_the_form_stays_and_a_warning_is_logged(broker, caplog):
    broker.set(f"prompt:assigned:{READER}", "not a hash")  # an error reply, not a lost link
    with caplog.at_level(logging.WARNING, logger="newsletter.memberships"):
        assert memberships.checkout_attribution(JOIN_PAGE, RULES, broker, READER) == JOIN_PAGE
    assert "WRONGTYPE" in caplog.text


# ---------------------------------------------------------------- against the Stripe sandbox

@pytest.fixture
def billing(stripe_sandbox):
    from newsletter.billing import Billing, Plan

    client = Billing(stripe_sandbox.secret_key, stripe_sandbox.url)
    client.sync_plan(Plan("Community membership", "usd", 600))
    return client


def paid_subscription(stripe_sandbox, billing, reader_id: str, email: str) -> str:
    """A subscription bought through Checkout naming `reader_id`; its id."""
    params = {"mode": "subscription", "line_items": [{"price": billing.price_id(), "quantity": 1}],
              "success_url": "http://x/s", "cancel_url": "http://x/c", "client_reference_id": reader_id,
              "subscription_data": {"metadata": {"reader_id": reader_id}}}
    checkout = billing.create_checkout(params, f"test:{reader_id}")
    return stripe_sandbox.pay_checkout(checkout["id"], email=email)["subscription"]


def test_a_subscription_naming_nobody_we_know_waits_then_is_adopted(session, stripe_sandbox, billing):
    subscription = paid_subscription(stripe_sandbox, billing, "someone-elses-id", "outside@example.com")
    with pytest.raises(memberships.UnknownCustomer):
        memberships.sync_subscription(session, billing, subscription, NOW)
    row = memberships.sync_subscription(session, billing, subscription, NOW, adopt=True)
    reader = session.get(Reader, row.reader_id)
    assert reader.email == "outside@example.com" and reader.stripe_customer_id
    assert memberships.reader_state(session, reader.id, NOW, 7) == "member"


def test_a_known_customer_is_recognised_without_metadata(session, stripe_sandbox, billing):
    reader = memberships.new_reader(session, "known@example.com")
    first = paid_subscription(stripe_sandbox, billing, reader.id, "known@example.com")
    memberships.sync_subscription(session, billing, first, NOW)
    customer = session.get(Reader, reader.id).stripe_customer_id
    stripe_sandbox.store.objects[first]["metadata"] = {}  # as if made in Stripe's dashboard
    row = memberships.sync_subscription(session, billing, first, NOW)
    assert row.reader_id == reader.id and customer.startswith("cus_")


def test_metadata_longer_than_its_column_is_cut_and_the_membership_written(session, stripe_sandbox, billing):
    # Metadata can be edited in Stripe's dashboard, and forms post what they like: a value
    # too long for its column would have left a paid membership unwritten on PostgreSQL.
    reader = memberships.new_reader(session, "long@example.com")
    subscription = paid_subscription(stripe_sandbox, billing, reader.id, "long@example.com")
    stripe_sandbox.store.objects[subscription]["metadata"] |= {
        "prompt": "p" * 60, "prompt_variant": "v" * 130, "source_article": "s\x00" * 100, "prompt_path": "click" * 3}
    row = memberships.sync_subscription(session, billing, subscription, NOW)
    session.commit()
    session.expire_all()
    row = session.get(Membership, row.id)
    assert (row.prompt, row.prompt_variant, row.prompt_path) == ("p" * 50, "v" * 100, "click" * 2)
    assert row.source_article == "s" * 100 and row.status == "active"


def test_the_sync_task_retries_an_unknown_customer_then_adopts_it(app, session, stripe_sandbox, billing):
    from newsletter import stripe_events
    from workers.celery_app import celery_init_app
    from workers.member_tasks import UNKNOWN_CUSTOMER_RETRIES

    app.config.update(STRIPE_SECRET_KEY=stripe_sandbox.secret_key, STRIPE_API_BASE=stripe_sandbox.url)
    subscription = paid_subscription(stripe_sandbox, billing, "ghost", "ghost@example.com")
    stripe_events.receive(session, {"id": "evt_1", "type": "customer.subscription.created",
                                    "data": {"object": {"object": "subscription", "id": subscription}}}, NOW)
    session.commit()
    task = celery_init_app(app).tasks["memberships.sync"]
    # Run eagerly, a retry runs at once instead of after its countdown: the first
    # UNKNOWN_CUSTOMER_RETRIES tries wait for a reader, the next one adopts the customer.
    result = task.apply(args=["evt_1", subscription, "ghost"])
    assert result.successful(), result.traceback
    assert session.scalars(select(Reader.email)).all() == ["ghost@example.com"]
    assert UNKNOWN_CUSTOMER_RETRIES < task.max_retries
    session.expire_all()
    assert session.scalars(select(Membership.status)).all() == ["active"]
    assert session.get(StripeEvent, "evt_1").processed_at is not None
