"""Celery tasks: each takes ids, opens nothing itself, and calls one domain function."""
from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import DBAPIError

from newsletter import db, feeds, mail, subscribers, suppression
from newsletter.addresses import email_hash, normalise
from newsletter.consent import ConsentContext
from newsletter.emails import MailSettings
from newsletter.mail import PermanentSendError, TransientSendError
from newsletter.models import utcnow

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
    made_at = utcnow()
    message = subscribers.signup_mail(session, subscriber_id, settings, now=made_at)
    # The new confirmation token commits before its mail leaves: a reader may click the
    # link within milliseconds of its delivery, and must find the token there.
    session.commit()
    try:
        _deliver(session, message, subscriber_id)
    except (TransientSendError, MailRefused):
        subscribers.withdraw_unsent_token(session, subscriber_id, made_at)
        session.commit()
        raise


@shared_task(name="subscribers.welcome_mail", **MAIL_RETRIES)
def send_welcome_mail(subscriber_id: int) -> None:
    """Send the welcome mail of a newly confirmed subscriber."""
    session = db.session()
    settings = MailSettings.from_config(current_app.config)
    _deliver(session, subscribers.welcome_mail(session, subscriber_id, settings), subscriber_id)


def _deliver(session, message, subscriber_id: int) -> None:
    """Send `message` (None: nothing to send). A transient failure is raised for a retry;
    an address refused for good is recorded as a hard bounce (so it is suppressed), then
    MailRefused raised."""
    if message is None:
        return
    try:
        with mail.sender(current_app) as outbox:
            outbox.send(message)
    except PermanentSendError as e:
        _record_hard_bounce(session, subscriber_id, message, e)
        raise _refused(message, subscriber_id, e) from None


def _record_hard_bounce(session, subscriber_id: int, message, error: PermanentSendError) -> None:
    # Only a refusal of the recipient (RCPT) says the address is bad; a 5xx to the whole
    # message (content, size, our sender) would suppress readers for our own fault.
    subscriber = subscribers.get(session, subscriber_id)
    if subscriber is None or not error.recipients:
        return
    codes = " ".join(str(code) for code in sorted({code for code, _ in error.recipients.values()}))
    # The server's text may repeat the address: the report keeps the code and the mail only.
    suppression.record_report(session, subscriber.email, "hard", utcnow(),
                              detail=f"SMTP {codes} refused {message['Subject']!r}")
    session.commit()


def _refused(message, subscriber_id: int, error: PermanentSendError) -> MailRefused:
    # The SMTP error names the address; logs and task results carry only its hash.
    digest = email_hash(normalise(str(message["To"])))
    codes = sorted({code for code, _ in error.recipients.values()}) or "no code"
    log.error("mail %r to subscriber %s (address %s) refused for good: %s",
              message["Subject"], subscriber_id, digest, codes)
    return MailRefused(f"mail to address {digest} refused permanently ({codes})")
