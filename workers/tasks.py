"""Celery tasks: each takes ids, opens nothing itself, and calls one domain function."""
from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import DBAPIError

from newsletter import db, feeds, mail, subscribers
from newsletter.addresses import email_hash, normalise
from newsletter.consent import ConsentContext
from newsletter.emails import MailSettings
from newsletter.mail import PermanentSendError, TransientSendError

log = logging.getLogger(__name__)


# Two workers storing the same new entry at once: one loses on a unique key and tries
# again, finding the row the other stored (or the fetch already finished).
@shared_task(name="feeds.fetch", autoretry_for=(DBAPIError,), max_retries=5, retry_backoff=2,
             retry_jitter=True)
def fetch_feed(fetch_id: int) -> None:
    """Fetch and ingest the feed of one FeedFetch row; a finished row is left alone."""
    session = db.session()
    feeds.run_fetch(session, fetch_id)
    session.commit()


@shared_task(name="feeds.poll")
def poll_feeds() -> None:
    """Queue a fetch for every configured feed (beat runs this)."""
    session = db.session()
    feeds.queue_configured(session, current_app.config["FEEDS"])
    session.commit()


# ---------------------------------------------------------------- the Daily Edition list

class MailRefused(Exception):
    """The SMTP server refused a mail for good; says which address by its hash only."""


# A transient failure (4xx, dropped connection) waits 30 s, 60 s … at most 10 min, five
# times: all far below the broker's visibility timeout (queue.VISIBILITY_TIMEOUT).
MAIL_RETRIES = {"autoretry_for": (TransientSendError,), "max_retries": 5, "retry_backoff": 30,
                "retry_backoff_max": 600, "retry_jitter": True}


# The reader was answered before the sign-up reached the database, so a database that
# is away for a while is waited for too (a lost race on the request id, as well).
SIGNUP_RETRIES = MAIL_RETRIES | {"autoretry_for": (TransientSendError, DBAPIError)}


@shared_task(name="subscribers.signup", **SIGNUP_RETRIES)
def sign_up(request_id: str, email: str, context: dict, consent_text: str, at: str) -> None:
    """Record a sign-up the web queued (once, however often the message comes) and send its mail.

    A retry after a failed send finds the sign-up recorded and tries the mail again.
    """
    session = db.session()
    subscriber_id = subscribers.signup(session, email, ConsentContext.from_json(context), consent_text,
                                       request_id=request_id, at=datetime.fromisoformat(at))
    session.commit()
    if subscriber_id is not None:
        _signup_mail(session, subscriber_id)


@shared_task(name="subscribers.signup_mail", **MAIL_RETRIES)
def send_signup_mail(subscriber_id: int) -> None:
    """Send what a sign-up calls for: a confirmation, an "already subscribed" mail, or nothing."""
    _signup_mail(db.session(), subscriber_id)


def _signup_mail(session, subscriber_id: int) -> None:
    settings = MailSettings.from_config(current_app.config)
    _deliver(session, subscribers.signup_mail(session, subscriber_id, settings), subscriber_id)


@shared_task(name="subscribers.welcome_mail", **MAIL_RETRIES)
def send_welcome_mail(subscriber_id: int) -> None:
    """Send the welcome mail of a newly confirmed subscriber."""
    session = db.session()
    settings = MailSettings.from_config(current_app.config)
    _deliver(session, subscribers.welcome_mail(session, subscriber_id, settings), subscriber_id)


def _deliver(session, message, subscriber_id: int) -> None:
    # Send, then commit: a failed send rolls back the new confirmation token, so a retry
    # makes a fresh one and the hourly cap counts only mails that left.
    if message is not None:
        try:
            with mail.sender(current_app) as outbox:
                outbox.send(message)
        except PermanentSendError as e:
            session.rollback()
            raise _refused(message, subscriber_id, e) from None
    session.commit()


def _refused(message, subscriber_id: int, error: PermanentSendError) -> MailRefused:
    # The SMTP error names the address; logs and task results carry only its hash.
    digest = email_hash(normalise(str(message["To"])))
    codes = sorted({code for code, _ in error.recipients.values()}) or "no code"
    log.error("mail %r to subscriber %s (address %s) refused for good: %s",
              message["Subject"], subscriber_id, digest, codes)
    return MailRefused(f"mail to address {digest} refused permanently ({codes})")
