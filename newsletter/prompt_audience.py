"""Who a signed-in reader is, for the prompt slot: membership state and Daily Edition subscription."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.memberships import reader_state
from newsletter.models import Reader, Subscriber


def standing(session: Session, reader_id: str | None, now: datetime, grace_days: int) -> tuple[str, bool]:
    """("member" | "past_due" | "none", whether the reader's address is a confirmed subscriber)."""
    if not reader_id:
        return "none", False
    return reader_state(session, reader_id, now, grace_days), is_subscriber(session, reader_id)


def is_subscriber(session: Session, reader_id: str) -> bool:
    """Whether the signed-in reader's address receives the Daily Edition."""
    found = session.scalar(
        select(Subscriber.id).join(Reader, Reader.email == Subscriber.email)
        .where(Reader.id == reader_id, Subscriber.state == "confirmed").limit(1))
    return found is not None
