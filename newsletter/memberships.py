"""Membership: who is a member now, from the subscriptions Stripe last described."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.models import Membership

MEMBER_STATUSES = ("active", "trialing")
# past_due keeps the benefits for a grace period while Stripe retries the card.
GRACE_STATUS = "past_due"


def reader_state(session: Session, reader_id: str | None, now: datetime, grace_days: int) -> str:
    """"member", "past_due" (a member in the grace period, asked to update the card) or "none"."""
    if not reader_id:
        return "none"
    rows = session.scalars(select(Membership).where(Membership.reader_id == reader_id)).all()
    states = {membership_state(row, now, grace_days) for row in rows}
    for state in ("member", "past_due"):
        if state in states:
            return state
    return "none"


def membership_state(row: Membership, now: datetime, grace_days: int) -> str:
    """The state one subscription gives its reader."""
    if row.status in MEMBER_STATUSES:
        return "member"
    if row.status == GRACE_STATUS:
        since = row.past_due_since or row.updated_at
        if now - since <= timedelta(days=grace_days):
            return "past_due"
    return "none"
