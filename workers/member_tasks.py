"""Membership tasks: keep a subscription true from Stripe, and the members' mails."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import DBAPIError

from newsletter import db, mail, member_mails, member_signin, memberships, stripe_events
from newsletter.billing import Billing, BillingError
from newsletter.emails import MailSettings
from newsletter.mail import TransientSendError
from newsletter.models import Reader

log = logging.getLogger(__name__)

# Stripe away, or two tasks racing on one new subscription's unique key: try again.
# Delays stay far below the broker's visibility timeout (newsletter.queue).
SYNC_RETRIES = {"max_retries": 8, "retry_backoff": 5, "retry_backoff_max": 1800, "retry_jitter": True}
# A subscription naming no reader of ours is retried this many times (the reader's
# checkout may not have committed yet), then adopted from its Stripe customer.
UNKNOWN_CUSTOMER_RETRIES = 5
MAIL_RETRIES = {"autoretry_for": (TransientSendError,), "max_retries": 5, "retry_backoff": 30,
                "retry_backoff_max": 600, "retry_jitter": True}


@shared_task(name="memberships.sync", bind=True, autoretry_for=(BillingError, DBAPIError), **SYNC_RETRIES)
def sync_membership(self, event_id: str, subscription_id: str, reader_id: str | None) -> None:
    """Write the subscription's current state as Stripe has it; the event is then done."""
    session = db.session()
    now = datetime.now(timezone.utc)
    adopt = self.request.retries >= UNKNOWN_CUSTOMER_RETRIES
    try:
        memberships.sync_subscription(session, _billing(), subscription_id, now, reader_id, adopt=adopt)
    except memberships.UnknownCustomer as e:
        session.rollback()
        raise self.retry(exc=e, countdown=30 * 2 ** self.request.retries)
    stripe_events.mark_processed(session, event_id, now)
    session.commit()


@shared_task(name="memberships.mail", **MAIL_RETRIES)
def send_notice(membership_id: int, kind: str) -> None:
    """Send a membership's welcome, payment-failed or ended mail."""
    config = current_app.config
    message = member_mails.notice(db.session(), membership_id, kind, MailSettings.from_config(config),
                                  int(config["MEMBERSHIP_GRACE_DAYS"]))
    _send(message)


@shared_task(name="members.sign_in_mail", **MAIL_RETRIES)
def send_sign_in_link(reader_id: str) -> None:
    """Make a sign-in token and mail its link; the token commits before the mail leaves."""
    session = db.session()
    reader = session.get(Reader, reader_id)
    if reader is None or not reader.email:
        return
    minutes = int(current_app.config["SIGN_IN_LINK_MINUTES"])
    raw = member_signin.issue_token(session, reader.id, datetime.now(timezone.utc), minutes)
    session.commit()
    _send(member_mails.sign_in_message(reader, raw, minutes, MailSettings.from_config(current_app.config)))


def _send(message) -> None:
    if message is None:
        return
    with mail.sender(current_app) as outbox:
        outbox.send(message)


def _billing() -> Billing:
    return Billing.for_app(current_app)
