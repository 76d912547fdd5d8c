"""Mails to members: sign-in link, welcome, payment failed, membership ended.

Each mail is a function returning its context (templates/email/<name>/). The payment
mail's link to the Customer Portal is a signed URL of ours that lasts the grace period:
Stripe's own portal sessions expire within minutes, too soon for a mail.
"""
from __future__ import annotations

from email.message import EmailMessage

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from newsletter import emails
from newsletter.emails import MailSettings
from newsletter.models import Membership, Reader

PORTAL_SALT = "member-portal-link"
NOTICES = {"welcome": "membership_welcome", "payment_failed": "membership_payment_failed",
           "ended": "membership_ended"}


class InvalidPortalLink(Exception):
    """A portal link that is forged, altered or older than the grace period."""


def sign_in(sign_in_url: str, minutes: int) -> dict:
    """The magic link mail."""
    return {"sign_in_url": sign_in_url, "minutes": minutes}


def welcome(settings: MailSettings) -> dict:
    return {"account_url": f"{settings.base_url}/account"}


def payment_failed(settings: MailSettings, reader_id: str, grace_days: int) -> dict:
    token = portal_token(settings.secret_key, reader_id)
    return {"portal_url": f"{settings.base_url}/membership/billing/{token}", "grace_days": grace_days}


def ended(settings: MailSettings) -> dict:
    return {"join_url": f"{settings.base_url}/membership"}


def notice(session: Session, membership_id: int, kind: str, settings: MailSettings,
           grace_days: int) -> EmailMessage | None:
    """The `kind` notice for a membership's reader, or None when the reader has no address."""
    row = session.get(Membership, membership_id)
    reader = session.get(Reader, row.reader_id) if row else None
    if reader is None or not reader.email:
        return None
    contexts = {"welcome": lambda: welcome(settings), "ended": lambda: ended(settings),
                "payment_failed": lambda: payment_failed(settings, reader.id, grace_days)}
    return emails.compose(NOTICES[kind], contexts[kind](), settings, reader.email)


def sign_in_message(reader: Reader, raw_token: str, minutes: int, settings: MailSettings) -> EmailMessage:
    url = f"{settings.base_url}/account/sign-in/{raw_token}"
    return emails.compose("member_sign_in", sign_in(url, minutes), settings, reader.email)


def portal_token(secret_key: str, reader_id: str) -> str:
    return URLSafeTimedSerializer(secret_key, salt=PORTAL_SALT).dumps(reader_id)


def reader_of_portal_token(secret_key: str, token: str, max_days: int) -> str:
    """The reader a portal link was made for; raises InvalidPortalLink."""
    try:
        return URLSafeTimedSerializer(secret_key, salt=PORTAL_SALT).loads(token, max_age=max_days * 86400)
    except BadSignature:
        raise InvalidPortalLink(token[:20]) from None
