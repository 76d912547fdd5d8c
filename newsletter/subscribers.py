"""The Daily Edition list: sign-up, double opt-in, unsubscribe, pause, export and erasure.

States: pending (signed up, not confirmed), confirmed, unsubscribed. Suppression (bounces,
complaints, erasure) is kept apart by address hash and checked before any mail. A sign-up
request only queues the sign-up (`signup_task`: no database work, the same whatever the
address's state, so the answer reveals nothing); the worker records it (`signup`, once
per request however often the message comes) and decides which mail, if any, it calls
for (`signup_mail`).
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from newsletter import emails, links
from newsletter.addresses import email_hash
from newsletter.consent import ConsentContext, record_consent
from newsletter.db import insert_ignoring_duplicate
from newsletter.models import (ConfirmationToken, ConsentRecord, ConsentText, Subscriber,
                               Suppression, utcnow)
from newsletter.queue import enqueue

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 256 random bits
_RAW_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,100}")
MAX_PAUSE_DAYS = 365
SIGNUP_TASK = "subscribers.signup"


class ConfirmationError(Exception):
    """A confirmation link cannot be used."""


class TokenInvalid(ConfirmationError):
    """No such confirmation token: mistyped, forged, or its subscriber was erased."""


class TokenExpired(ConfirmationError):
    """The confirmation token is too old; signing up again sends a new one."""


class TokenUsed(ConfirmationError):
    """The confirmation token (or a later one of the same reader) was already used."""


# ---------------------------------------------------------------- lookups

def get(session: Session, subscriber_id: int) -> Subscriber | None:
    """The subscriber with this id, if any."""
    return session.get(Subscriber, subscriber_id)


def by_email(session: Session, email: str) -> Subscriber | None:
    """The subscriber of a normalised address, matching case variants of it too."""
    query = select(Subscriber).where(Subscriber.email_hash == email_hash(email))
    return session.scalars(query.order_by(Subscriber.id).limit(1)).first()


def counts_by_state(session: Session) -> dict[str, int]:
    """How many subscribers are in each state (every state, zeros included)."""
    query = select(Subscriber.state, func.count()).group_by(Subscriber.state)
    return dict.fromkeys(Subscriber.STATES, 0) | dict(session.execute(query).all())


def is_receiving(subscriber: Subscriber, now: datetime) -> bool:
    """Whether list mail goes to `subscriber` now (suppression is checked apart)."""
    paused = subscriber.paused_until is not None and subscriber.paused_until > now
    return subscriber.state == "confirmed" and not paused


# ---------------------------------------------------------------- sign-up and opt-in

def signup_task(email: str, ctx: ConsentContext, consent_text: str,
                now: datetime | None = None) -> tuple[str, tuple]:
    """The task that records the sign-up of a normalised address: its name and arguments,
    a fresh request id first.

    No SQL: the same work, and time, for an address in any state. The web queues it
    with its rate limits (newsletter.limits.queue_signup); the worker runs `signup`.
    """
    at = (now or utcnow()).isoformat()
    return SIGNUP_TASK, (uuid.uuid4().hex, email, ctx.as_json(), consent_text, at)


def signup(session: Session, email: str, ctx: ConsentContext, consent_text: str,
           request_id: str | None = None, at: datetime | None = None) -> int | None:
    """Record a sign-up of a normalised address; the id of its subscriber.

    A `request_id` already recorded records nothing again: a redelivered message gives
    the subscriber of the first delivery (None if erased since). The state never changes
    here: an unsubscribed reader must confirm again.
    """
    if request_id is not None:
        done = select(ConsentRecord).where(ConsentRecord.request_id == request_id)
        record = session.scalars(done).first()
        if record is not None:
            return record.subscriber_id
    subscriber = by_email(session, email) or _create(session, email, ctx.source)
    record_consent(session, subscriber, "signup", ctx, consent_text, at=at, request_id=request_id)
    return subscriber.id


def _create(session: Session, email: str, source: str) -> Subscriber:
    # Two sign-ups of a new address at once (a double click): the second finds the first's row.
    values = {"email": email, "email_hash": email_hash(email), "state": "pending",
              "token_key": secrets.token_hex(16), "source": source}
    insert_ignoring_duplicate(session, Subscriber, values, "email")
    return session.scalars(select(Subscriber).where(Subscriber.email == email)).one()


def check_confirmation(session: Session, raw_token: str, now: datetime | None = None) -> Subscriber:
    """The subscriber a confirmation token would confirm, without using it; or a ConfirmationError."""
    token = _usable_token(session, raw_token, now or utcnow())
    return session.get(Subscriber, token.subscriber_id)


def confirm(session: Session, raw_token: str, ctx: ConsentContext, consent_text: str,
            now: datetime | None = None) -> Subscriber:
    """Use a confirmation token: the subscriber is confirmed and a welcome mail queued."""
    now = now or utcnow()
    token = _usable_token(session, raw_token, now)
    _use_tokens(session, token, now)
    subscriber = session.get(Subscriber, token.subscriber_id)
    subscriber.state, subscriber.confirmed_at, subscriber.unsubscribed_at = "confirmed", now, None
    record_consent(session, subscriber, "confirm", ctx, consent_text, at=now)
    enqueue(session, "subscribers.welcome_mail", subscriber.id)
    return subscriber


def _usable_token(session: Session, raw_token: str, now: datetime) -> ConfirmationToken:
    if not isinstance(raw_token, str) or not _RAW_TOKEN.fullmatch(raw_token):
        raise TokenInvalid("malformed confirmation token")
    token = session.scalars(select(ConfirmationToken).where(
        ConfirmationToken.token_hash == _token_hash(raw_token))).first()
    if token is None:
        raise TokenInvalid("unknown confirmation token")
    if token.used_at is not None:
        raise TokenUsed("confirmation token already used")
    if token.expires_at <= now:
        raise TokenExpired("confirmation token expired")
    return token


def _use_tokens(session: Session, token: ConfirmationToken, now: datetime) -> None:
    # The condition on used_at makes the token single use even under concurrent POSTs;
    # the reader's other open tokens go with it, so an older mail cannot confirm twice.
    unused = ConfirmationToken.used_at.is_(None)
    claimed = session.execute(update(ConfirmationToken).where(
        ConfirmationToken.id == token.id, unused).values(used_at=now))
    if claimed.rowcount != 1:
        raise TokenUsed("confirmation token already used")
    session.execute(update(ConfirmationToken).where(
        ConfirmationToken.subscriber_id == token.subscriber_id, unused).values(used_at=now))


def _new_token(session: Session, subscriber: Subscriber, now: datetime, hours: int) -> str:
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(ConfirmationToken(subscriber_id=subscriber.id, token_hash=_token_hash(raw),
                                  created_at=now, expires_at=now + timedelta(hours=hours)))
    session.flush()
    return raw


def _token_hash(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode("ascii")).hexdigest()


# ---------------------------------------------------------------- the mails

def signup_mail(session: Session, subscriber_id: int, settings: emails.MailSettings,
                now: datetime | None = None) -> EmailMessage | None:
    """The mail a sign-up calls for, or None (gone, suppressed, over the hourly cap).

    Confirmed: "already subscribed"; pending or unsubscribed: a new confirmation token.
    """
    now = now or utcnow()
    subscriber = _locked(session, subscriber_id)
    if subscriber is None or _suppressed(session, subscriber):
        return None
    if _over_cap(session, subscriber, settings.mails_per_hour, now):
        log.info("sign-up mail cap reached for address %s", subscriber.email_hash)
        return None
    if subscriber.state == "confirmed":
        return _list_mail(subscriber, "already_subscribed", settings)
    raw = _new_token(session, subscriber, now, settings.confirm_hours)
    context = emails.confirmation(subscriber, links.confirm_url(settings.base_url, raw),
                                  settings.confirm_hours)
    return emails.compose("confirm", context, settings, subscriber.email)


def withdraw_unsent_token(session: Session, subscriber_id: int, made_at: datetime) -> None:
    """Delete the confirmation token `signup_mail` made at `made_at` when its mail did not
    leave: a retry makes a fresh one, and the hourly cap counts only mails sent."""
    session.execute(delete(ConfirmationToken).where(
        ConfirmationToken.subscriber_id == subscriber_id, ConfirmationToken.created_at == made_at,
        ConfirmationToken.used_at.is_(None)))


def welcome_mail(session: Session, subscriber_id: int,
                 settings: emails.MailSettings) -> EmailMessage | None:
    """The welcome mail of a confirmed subscriber, or None (gone, left again, suppressed)."""
    subscriber = get(session, subscriber_id)
    if subscriber is None or subscriber.state != "confirmed" or _suppressed(session, subscriber):
        return None
    return _list_mail(subscriber, "welcome", settings)


def _list_mail(subscriber: Subscriber, name: str, settings: emails.MailSettings) -> EmailMessage:
    unsubscribe = links.unsubscribe_url(settings.base_url, subscriber, settings.secret_key)
    manage = links.manage_url(settings.base_url, subscriber, settings.secret_key)
    context = getattr(emails, name)(subscriber, unsubscribe, manage)
    headers = emails.list_headers(unsubscribe, settings.unsubscribe_mailto or settings.mail_from)
    return emails.compose(name, context, settings, subscriber.email, headers)


def _locked(session: Session, subscriber_id: int) -> Subscriber | None:
    # Serialises the cap check of concurrent sign-up mails of one reader on PostgreSQL
    # (FOR NO KEY UPDATE: consent records may still be added meanwhile).
    query = select(Subscriber).where(Subscriber.id == subscriber_id)
    return session.scalars(query.with_for_update(key_share=True)).first()


def _over_cap(session: Session, subscriber: Subscriber, per_hour: int, now: datetime) -> bool:
    # Confirmation mails are counted by their tokens; "already subscribed" mails, which
    # leave no token, by the sign-ups that asked for them (this one included).
    since = now - timedelta(hours=1)
    if subscriber.state == "confirmed":
        return _count(session, ConsentRecord, ConsentRecord.at, subscriber, since,
                      ConsentRecord.action == "signup") > per_hour
    return _count(session, ConfirmationToken, ConfirmationToken.created_at, subscriber,
                  since) >= per_hour


def _count(session: Session, model, at, subscriber: Subscriber, since: datetime, *where) -> int:
    query = select(func.count()).select_from(model).where(
        model.subscriber_id == subscriber.id, at > since, *where)
    return session.scalar(query)


def _suppressed(session: Session, subscriber: Subscriber) -> bool:
    # Read here rather than through newsletter.suppression, which imports this module.
    query = select(Suppression.id).where(Suppression.email_hash == subscriber.email_hash)
    return session.scalar(query.limit(1)) is not None


# ---------------------------------------------------------------- leaving, pausing, coming back

def unsubscribe(session: Session, subscriber: Subscriber, ctx: ConsentContext,
                now: datetime | None = None) -> None:
    """Take `subscriber` off the list at once; unsubscribing again changes nothing."""
    if subscriber.state == "unsubscribed":
        return
    now = now or utcnow()
    subscriber.state, subscriber.unsubscribed_at = "unsubscribed", now
    record_consent(session, subscriber, "unsubscribe", ctx, at=now)


def resubscribe(session: Session, subscriber: Subscriber, ctx: ConsentContext, consent_text: str,
                now: datetime | None = None) -> None:
    """Put `subscriber` back on the list from the signed page (holding the link proves the mailbox)."""
    if subscriber.state == "confirmed":
        return
    now = now or utcnow()
    subscriber.state, subscriber.unsubscribed_at = "confirmed", None
    subscriber.confirmed_at = subscriber.confirmed_at or now
    record_consent(session, subscriber, "resubscribe", ctx, consent_text, at=now)


def pause(session: Session, subscriber: Subscriber, days: int, now: datetime | None = None) -> None:
    """Hold list mail for `days` days (1 to 365) from now."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_PAUSE_DAYS:
        raise ValueError(f"a pause lasts from 1 to {MAX_PAUSE_DAYS} days")
    subscriber.paused_until = (now or utcnow()) + timedelta(days=days)
    session.flush()


def resume(session: Session, subscriber: Subscriber) -> None:
    """End a pause now."""
    subscriber.paused_until = None
    session.flush()


# ---------------------------------------------------------------- the reader's own data

SUBSCRIBER_FIELDS = ("id", "email", "state", "name", "source", "created_at", "confirmed_at",
                     "unsubscribed_at", "paused_until")
RECORD_FIELDS = ("action", "at", "version", "ip", "user_agent", "page", "article", "source")


def export_data(session: Session, subscriber: Subscriber) -> dict:
    """Everything kept about `subscriber` as JSON-able data, consent records and their wording included."""
    query = (select(ConsentRecord, ConsentText.text)
             .outerjoin(ConsentText, ConsentRecord.version == ConsentText.version)
             .where(ConsentRecord.subscriber_id == subscriber.id)
             .order_by(ConsentRecord.at, ConsentRecord.id))
    records = [_fields(record, RECORD_FIELDS) | {"text": text}
               for record, text in session.execute(query)]
    return _fields(subscriber, SUBSCRIBER_FIELDS) | {
        "suppressed": _suppressed(session, subscriber), "consent_records": records}


def _fields(row, names: tuple[str, ...]) -> dict:
    values = {name: getattr(row, name) for name in names}
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def erase(session: Session, subscriber: Subscriber) -> None:
    """Delete `subscriber`; consent proofs keep only the address hash, which stays suppressed."""
    session.execute(update(ConsentRecord).where(ConsentRecord.subscriber_id == subscriber.id)
                    .values(subscriber_id=None, ip="", user_agent=""))
    session.execute(delete(ConfirmationToken).where(
        ConfirmationToken.subscriber_id == subscriber.id))
    _suppress_erased(session, subscriber.email_hash)
    session.delete(subscriber)
    session.flush()


def _suppress_erased(session: Session, digest: str) -> None:
    # So an erased address is not imported or mailed again unnoticed; an existing
    # suppression keeps its reason.
    insert_ignoring_duplicate(session, Suppression, {"email_hash": digest, "reason": "erased"},
                              "email_hash")
