"""Membership: who is a member, kept true from Stripe's subscriptions.

Stripe is the source of truth. Every webhook event only says "look again": its id is
stored once (newsletter.stripe_events), then a task re-fetches the subscription and
writes what Stripe says now, so duplicates and any order of events end the same.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter import db, prompt_history, queue
from newsletter.billing import Billing
from newsletter.models import Membership, Reader
from newsletter.prompt_rules import Rules

log = logging.getLogger(__name__)

MEMBER_STATUSES = ("active", "trialing")
# past_due keeps the benefits for a grace period while Stripe retries the card.
GRACE_STATUS = "past_due"
ENDED_STATUSES = ("canceled", "unpaid", "incomplete_expired")
METADATA_KEYS = ("reader_id", "prompt", "prompt_variant", "source_article", "prompt_path")
# prompt_path of an appeal's click from a reader who is not counted (no consent, opted out):
# a conversion, but not of the experiment, whose rates are its counted readers'.
UNCOUNTED = "uncounted"
# Metadata keys written, once, to the Membership columns of the same names.
ATTRIBUTION_KEYS = ("prompt", "prompt_variant", "source_article", "prompt_path")


class UnknownCustomer(Exception):
    """A subscription names no reader we know (yet): the task tries again later."""


class AlreadyMember(Exception):
    """The reader is a member already; checkout would sell them a second membership."""


@dataclass(frozen=True)
class Attribution:
    """What led to a checkout: the prompt, its variant and the story (newsletter.prompts), and
    how the variant is known: "click" (the form named it) or "assigned" (the reader's bucket)."""

    prompt: str = ""
    variant: str = ""
    article: str = ""
    path: str = ""

    def __post_init__(self):
        # The form's values go to Stripe and come back in the subscription the webhook's task
        # stores: a NUL in them (PostgreSQL refuses it) would leave a paid membership unwritten.
        for name in ("prompt", "variant", "article", "path"):
            object.__setattr__(self, name, db.without_nul(getattr(self, name)))

    def metadata(self, reader_id: str) -> dict:
        values = {"reader_id": reader_id, "prompt": self.prompt, "prompt_variant": self.variant,
                  "source_article": self.article, "prompt_path": self.path}
        return {k: v[:100] for k, v in values.items() if v}


# ---------------------------------------------------------------- who is a member

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


def current_membership(session: Session, reader_id: str) -> Membership | None:
    """The reader's most recent subscription, for the account page."""
    return session.scalars(select(Membership).where(Membership.reader_id == reader_id)
                           .order_by(Membership.created_at.desc(), Membership.id.desc())).first()


def member_emails(session: Session, now: datetime, grace_days: int) -> set[str]:
    """Addresses of readers who are members now (the Daily Edition's member version)."""
    rows = session.execute(select(Reader.email, Membership).join(Membership, Membership.reader_id == Reader.id)
                           .where(Reader.email.is_not(None))).all()
    return {email for email, row in rows if membership_state(row, now, grace_days) != "none"}


# ---------------------------------------------------------------- readers

def new_reader(session: Session, email: str | None = None) -> Reader:
    reader = Reader(id=secrets.token_hex(16), email=email)
    session.add(reader)
    session.flush()
    return reader


def reader_for_checkout(session: Session, reader_id: str | None) -> Reader:
    """The signed-in (or earlier checking-out) reader, or a new one."""
    reader = session.get(Reader, reader_id) if reader_id else None
    return reader or new_reader(session)


# ---------------------------------------------------------------- attribution

def checkout_attribution(posted: Attribution, rules: Rules, store: redis.Redis | None,
                         reader_id: str | None) -> Attribution:
    """Whose conversion a checkout is (intention to treat, docs/prompts.md).

    A form naming a bucket of a membership prompt of the rules was that appeal's button: a
    click (UNCOUNTED from a reader with no id, outside the experiment). Any other checkout
    (the join page, a members-only story's gate) goes to the reader's assigned bucket, the
    control's too; without one it keeps what the form says.
    """
    owner = rules.owner(posted.variant) if posted.variant else None
    if owner is not None and owner.kind == "membership":
        return replace(posted, path="click" if reader_id else UNCOUNTED)
    found = assigned_bucket(rules, reader_buckets(store, reader_id))
    if found is not None:
        return Attribution(prompt=found[0], variant=found[1], article=posted.article, path="assigned")
    return replace(posted, path="click" if posted.variant else "")


def assigned_bucket(rules: Rules, buckets: dict[str, str]) -> tuple[str, str] | None:
    """(kind, counter id) of the highest membership prompt the reader was assigned to."""
    for prompt in rules.prompts:
        if prompt.kind == "membership" and prompt.id in buckets:
            return prompt.kind, buckets[prompt.id]
    return None


def reader_buckets(store: redis.Redis | None, reader_id: str | None) -> dict[str, str]:
    """The reader's assignments; none without an id or a Redis, or when Redis does not answer."""
    if store is None or reader_id is None:
        return {}
    try:
        return prompt_history.assigned(store, reader_id)
    except redis.RedisError as error:  # a sale matters more than its attribution
        log.warning("checkout not attributed to an assignment: Redis did not answer or refused (%s)", error)
        return {}


# ---------------------------------------------------------------- checkout

def start_checkout(session: Session, billing: Billing, reader: Reader, price_id: str, urls: dict,
                   attribution: Attribution, now: datetime, trial_days: int = 0, grace_days: int = 7) -> str:
    """Create a Checkout session for `reader`; returns its URL. Raises AlreadyMember."""
    if reader_state(session, reader.id, now, grace_days) != "none":
        raise AlreadyMember(reader.id)
    metadata = attribution.metadata(reader.id)
    params = {
        "mode": "subscription", "line_items": [{"price": price_id, "quantity": 1}],
        "success_url": urls["success"], "cancel_url": urls["cancel"],
        "client_reference_id": reader.id, "allow_promotion_codes": True,
        "subscription_data": {"metadata": metadata}, "metadata": metadata,
    }
    if trial_days:
        params["subscription_data"]["trial_period_days"] = trial_days
    if reader.stripe_customer_id:
        params["customer"] = reader.stripe_customer_id  # the known customer, reused
    elif reader.email:
        params["customer_email"] = reader.email
    # A double click within ten minutes gets the same session, not a second one.
    window = int(now.timestamp()) // 600
    key = (f"checkout:{reader.id}:{price_id}:{attribution.variant}:{attribution.path}:"
           f"{attribution.article}:{window}")
    return billing.create_checkout(params, key)["url"]


def completed_checkout(billing: Billing, session_id: str) -> dict | None:
    """The checkout session if Stripe says it is complete and paid (or in a free trial)."""
    checkout = billing.checkout_session(session_id)
    if checkout["status"] == "complete" and checkout["payment_status"] in ("paid", "no_payment_required"):
        return checkout
    return None


# ---------------------------------------------------------------- keeping it true

def sync_subscription(session: Session, billing: Billing, subscription_id: str, now: datetime,
                      reader_hint: str | None = None, adopt: bool = False) -> Membership:
    """Write the subscription's current state as Stripe has it, and queue the mail it calls for.

    The row is locked before Stripe is asked, so two tasks for one subscription write in
    turn and the later fetch wins. `adopt`: make a reader from the Stripe customer when
    no reader of ours is named (a subscription made outside our checkout).
    """
    row = session.scalars(select(Membership).where(Membership.stripe_subscription_id == subscription_id)
                          .with_for_update()).first()
    sub = billing.subscription(subscription_id)
    reader = _reader_of(session, billing, sub, row, reader_hint, adopt)
    if row is None:
        row = Membership(reader_id=reader.id, stripe_subscription_id=subscription_id, status=sub["status"])
        session.add(row)
    _write_state(row, sub, now)
    session.flush()  # a new row gets its id, which the mail task takes
    _queue_notice(session, row)
    return row


def _reader_of(session: Session, billing: Billing, sub: dict, row: Membership | None,
               hint: str | None, adopt: bool) -> Reader:
    customer_id = sub["customer"]
    reader = None
    for reader_id in (row.reader_id if row else None, sub["metadata"].get("reader_id"), hint):
        reader = reader or (session.get(Reader, reader_id) if reader_id else None)
    reader = reader or session.scalars(select(Reader).where(Reader.stripe_customer_id == customer_id)).first()
    if reader is None and not adopt:
        raise UnknownCustomer(customer_id)
    customer = billing.customer(customer_id) if reader is None or not reader.email else None
    if reader is None:
        reader = _adopted(session, customer)
    _link(session, reader, customer_id, customer)
    return reader


def _adopted(session: Session, customer: dict) -> Reader:
    email = customer.get("email")
    found = session.scalars(select(Reader).where(Reader.email == email)).first() if email else None
    return found or new_reader(session, email)


def _link(session: Session, reader: Reader, customer_id: str, customer: dict | None) -> None:
    if reader.stripe_customer_id is None:
        reader.stripe_customer_id = customer_id
    email = (customer or {}).get("email")
    if email and not reader.email:
        taken = session.scalars(select(Reader.id).where(Reader.email == email)).first()
        if taken is None:
            reader.email = email


def _write_state(row: Membership, sub: dict, now: datetime) -> None:
    row.status = sub["status"]
    row.cancel_at_period_end = bool(sub.get("cancel_at_period_end"))
    row.current_period_end = _period_end(sub)
    if row.status != GRACE_STATUS:
        row.past_due_since = None
    elif row.past_due_since is None:
        row.past_due_since = now
    for key in ATTRIBUTION_KEYS:
        if getattr(row, key) is None:
            setattr(row, key, _fitted(key, sub["metadata"].get(key)))
    row.updated_at = now


def _fitted(column: str, value) -> str | None:
    """A metadata value cut to its column: metadata can come from anywhere that can edit the
    subscription (a form, Stripe's dashboard), and a value too long for the column would
    leave the paid membership unwritten (PostgreSQL refuses it)."""
    if not value:
        return None
    return db.without_nul(str(value))[:Membership.__table__.c[column].type.length]


def _period_end(sub: dict) -> datetime | None:
    # Since API 2025-03-31 the period lives on the subscription's items.
    items = (sub.get("items") or {}).get("data") or [{}]
    end = items[0].get("current_period_end") or sub.get("current_period_end")
    return datetime.fromtimestamp(end, timezone.utc) if end else None


def _queue_notice(session: Session, row: Membership) -> None:
    """Queue the welcome, payment-failed or ended mail once per change of state."""
    notice = notice_for(row.status, row.notified_status)
    if notice is None:
        return
    if notice != "recovered":
        queue.enqueue(session, "memberships.mail", row.id, notice)
    row.notified_status = "welcome" if notice == "recovered" else notice


def notice_for(status: str, notified: str | None) -> str | None:
    """Which mail a status calls for, given the last one sent: welcome, payment_failed, ended."""
    if status in MEMBER_STATUSES:
        if notified is None:
            return "welcome"
        return "recovered" if notified == "payment_failed" else None
    if status == GRACE_STATUS:
        return "payment_failed" if notified in (None, "welcome") else None
    if status in ENDED_STATUSES and notified in ("welcome", "payment_failed"):
        return "ended"
    return None
