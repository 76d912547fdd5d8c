"""Who is a member, and which mail each change of a subscription calls for."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import pytest

from newsletter import memberships
from newsletter.models import Membership

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
