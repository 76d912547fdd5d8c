"""The deliveries ledger: planning, claims and the state of each (edition, subscriber) row.

Every statement here is set-based and conditional, so that two workers, a worker and the
sweeper, or two runs of the same task can race without sending a row twice.

A pending row's claim is `claimed_by` plus `claimed_until`:

- free: both NULL (or `claimed_until` in the past): anyone may take it;
- reserved: `q<token>` until a deadline: a queued batch task carries that token and
  takes the row when it runs; the sweeper queues the row again only once the
  reservation lapsed (the message was lost, or no worker got to it in time);
- leased: `w<token>` until now + SEND_LEASE: a running batch task owns it and renews the
  lease while it works; when the worker dies the lease lapses and the row is free.

A row is sent only by the holder of its lease, and marked sent right after the server's
250, so a worker killed mid-batch leaves at most the one row whose 250 it had not yet
recorded.
"""
from __future__ import annotations

import secrets
from datetime import datetime
from typing import Iterable

from sqlalchemy import and_, bindparam, case, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session

from newsletter import db
from newsletter.models import Delivery, Edition, Subscriber, Suppression, UTCDateTime

QUEUED, RUNNING = "q", "w"
_ERROR_LENGTH = 500


def new_token(kind: str) -> str:
    """A claim token: QUEUED ("q…") for a queued task, RUNNING ("w…") for a running one."""
    return kind + secrets.token_hex(8)


def batch_ranges(ids: Iterable[int], size: int) -> list[tuple[int, int]]:
    """(first id, last id) of consecutive slices of `size` ids each."""
    ordered = sorted(ids)
    return [(ordered[i], ordered[min(i + size, len(ordered)) - 1])
            for i in range(0, len(ordered), size)]


# ---------------------------------------------------------------- planning

def plan_chunk(session: Session, edition_id: int, after: int, upto: int, token: str,
               until: datetime, now: datetime) -> list[int]:
    """Add a row, reserved by `token`, for each subscriber with id in (after, upto] who
    receives mail now; rows already there are left alone. The ids of the new rows."""
    receiving = select(
        literal(edition_id), Subscriber.id, literal("pending"), literal(0), literal(""),
        literal(token), literal(until, UTCDateTime()), literal(now, UTCDateTime()),
    ).where(
        Subscriber.id > after, Subscriber.id <= upto, Subscriber.state == "confirmed",
        or_(Subscriber.paused_until.is_(None), Subscriber.paused_until <= now),
        ~exists().where(Suppression.email_hash == Subscriber.email_hash),
    ).order_by(Subscriber.id)
    columns = ["edition_id", "subscriber_id", "state", "attempts", "last_error", "claimed_by",
               "claimed_until", "updated_at"]
    statement = (db.dialect_insert(session, Delivery).from_select(columns, receiving)
                 .on_conflict_do_nothing(index_elements=["edition_id", "subscriber_id"])
                 .returning(Delivery.id))
    return list(session.scalars(statement))


def last_subscriber_id(session: Session) -> int:
    return session.scalar(select(func.max(Subscriber.id))) or 0


# ---------------------------------------------------------------- claims

def reserve_free(session: Session, edition_id: int, token: str, until: datetime,
                 now: datetime, *, take_queued: bool = False) -> list[int]:
    """Reserve for `token` every pending row nobody holds (and, with `take_queued`, the
    rows only reserved by queued tasks); their ids."""
    free = [Delivery.claimed_until.is_(None), Delivery.claimed_until < now]
    if take_queued:
        free.append(Delivery.claimed_by.startswith(QUEUED))
    statement = (update(Delivery)
                 .where(Delivery.edition_id == edition_id, Delivery.state == "pending", or_(*free))
                 .values(claimed_by=token, claimed_until=until)
                 .returning(Delivery.id))
    return list(session.scalars(statement, execution_options={"synchronize_session": False}))


def claim(session: Session, edition_id: int, first: int, last: int, reservation: str | None,
          lease: str, until: datetime, now: datetime) -> list[int]:
    """Lease to `lease` the pending rows of the range that are free or reserved for
    `reservation`; their ids in order."""
    takeable = [Delivery.claimed_until.is_(None), Delivery.claimed_until < now]
    if reservation:
        takeable.append(Delivery.claimed_by == reservation)
    statement = (update(Delivery)
                 .where(_in_range(edition_id, first, last), Delivery.state == "pending",
                        or_(*takeable))
                 .values(claimed_by=lease, claimed_until=until)
                 .returning(Delivery.id))
    return sorted(session.scalars(statement, execution_options={"synchronize_session": False}))


def renew(session: Session, edition_id: int, first: int, last: int, lease: str,
          until: datetime) -> int:
    """Extend the lease on the rows of the range `lease` still holds."""
    return _update_held(session, edition_id, first, last, lease, claimed_until=until)


def release(session: Session, edition_id: int, first: int, last: int, lease: str) -> int:
    """Free the pending rows of the range that `lease` holds (a paused send)."""
    return _update_held(session, edition_id, first, last, lease, claimed_by=None, claimed_until=None)


def park(session: Session, edition_id: int, first: int, last: int, lease: str, retry: str,
         until: datetime) -> int:
    """Hand the pending rows `lease` holds over to the queued retry task `retry`."""
    return _update_held(session, edition_id, first, last, lease, claimed_by=retry, claimed_until=until)


def _update_held(session, edition_id, first, last, lease, **values) -> int:
    statement = (update(Delivery)
                 .where(_in_range(edition_id, first, last), Delivery.state == "pending",
                        Delivery.claimed_by == lease)
                 .values(**values))
    return session.execute(statement, execution_options={"synchronize_session": False}).rowcount


def _in_range(edition_id: int, first: int, last: int):
    return and_(Delivery.edition_id == edition_id, Delivery.id.between(first, last))


# ---------------------------------------------------------------- outcomes of one row

# Plain Core on table columns, built once, run on the session's connection: this runs
# after every message.
_d = Delivery.__table__.c
_MARK_SENT = (
    Delivery.__table__.update()
    .where(_d.id == bindparam("delivery_id"), _d.state != "sent")
    .values(state="sent", sent_at=bindparam("now"), updated_at=bindparam("now"),
            attempts=_d.attempts + 1, last_error="", claimed_by=None, claimed_until=None))


# The same, as a WITH clause another statement can carry: PostgreSQL then records one
# message as sent in the round trip that reads the next one (newsletter.sending).
MARK_SENT_CTE = (
    Delivery.__table__.update()
    .where(_d.id == bindparam("sent_id"), _d.state != "sent")
    .values(state="sent", sent_at=bindparam("sent_at"), updated_at=bindparam("sent_at"),
            attempts=_d.attempts + 1, last_error="", claimed_by=None, claimed_until=None)
    .returning(_d.id)
    .cte("marked_sent"))


def mark_sent(session: Session, delivery_id: int, now: datetime) -> None:
    """The server answered 250: the row is sent, whoever holds it now and even when a
    cancel skipped it while the message was on its way: the ledger says what happened."""
    session.connection().execute(_MARK_SENT, {"delivery_id": delivery_id, "now": now})


def mark_failed(session: Session, delivery_id: int, error: str) -> None:
    _finish(session, delivery_id, "failed", error)


def mark_skipped(session: Session, delivery_id: int, reason: str) -> None:
    _finish(session, delivery_id, "skipped", reason, attempts=Delivery.attempts)


def _finish(session, delivery_id, state, error, **values) -> None:
    values = {"attempts": Delivery.attempts + 1} | values
    session.execute(
        update(Delivery).where(Delivery.id == delivery_id, Delivery.state == "pending")
        .values(state=state, last_error=error[:_ERROR_LENGTH], claimed_by=None,
                claimed_until=None, **values),
        execution_options={"synchronize_session": False})


def note_transient(session: Session, delivery_id: int, error: str, max_attempts: int) -> str:
    """Count a failed attempt; the row stays pending (and claimed) until `max_attempts`,
    then fails. Its new state."""
    attempts = Delivery.attempts + 1
    statement = (update(Delivery)
                 .where(Delivery.id == delivery_id, Delivery.state == "pending")
                 .values(attempts=attempts, last_error=error[:_ERROR_LENGTH],
                         state=case((attempts >= max_attempts, "failed"), else_="pending"))
                 .returning(Delivery.state))
    return session.scalar(statement, execution_options={"synchronize_session": False}) or "gone"


# ---------------------------------------------------------------- the whole edition

def skip_pending(session: Session, edition_id: int, reason: str) -> int:
    """Every pending row of the edition becomes skipped (a cancelled send)."""
    statement = (update(Delivery)
                 .where(Delivery.edition_id == edition_id, Delivery.state == "pending")
                 .values(state="skipped", last_error=reason, claimed_by=None, claimed_until=None))
    return session.execute(statement, execution_options={"synchronize_session": False}).rowcount


def retry_failed(session: Session, edition_id: int) -> int:
    """Every failed row of the edition becomes pending again, with its attempts reset."""
    statement = (update(Delivery)
                 .where(Delivery.edition_id == edition_id, Delivery.state == "failed")
                 .values(state="pending", attempts=0, last_error="", claimed_by=None,
                         claimed_until=None))
    return session.execute(statement, execution_options={"synchronize_session": False}).rowcount


def finish_if_done(session: Session, edition_id: int, now: datetime) -> bool:
    """sending → sent once the edition is planned and no row is pending; True if now."""
    pending = exists().where(Delivery.edition_id == edition_id, Delivery.state == "pending")
    statement = (update(Edition)
                 .where(Edition.id == edition_id, Edition.state == "sending",
                        Edition.planned_at.is_not(None), ~pending)
                 .values(state="sent", finished_at=now))
    return session.execute(statement, execution_options={"synchronize_session": False}).rowcount == 1


def counts(session: Session, edition_id: int) -> dict[str, int]:
    """Rows by state, every state present (zeros too)."""
    found = dict(session.execute(
        select(Delivery.state, func.count()).where(Delivery.edition_id == edition_id)
        .group_by(Delivery.state)).all())
    return {state: found.get(state, 0) for state in ("pending", "sent", "failed", "skipped")}


def sent_since(session: Session, edition_id: int, since: datetime) -> int:
    return session.scalar(select(func.count()).where(
        Delivery.edition_id == edition_id, Delivery.state == "sent", Delivery.sent_at >= since))
