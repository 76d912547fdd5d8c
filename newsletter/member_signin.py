"""Members sign in without a password: a single-use link by mail, good for 15 minutes.

Only the link token's SHA-256 is stored. The link opens a page with a button (GET does
nothing, because mail scanners follow links); the POST spends the token.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from newsletter import queue
from newsletter.addresses import InvalidEmail, normalise
from newsletter.models import Reader, SignInToken

DEFAULT_MINUTES = 15


class InvalidToken(Exception):
    """A sign-in link that is unknown, used or expired."""


def find_reader(session: Session, email: str) -> Reader | None:
    """The reader with this address (any case), or None."""
    try:
        address = normalise(email)
    except InvalidEmail:
        return None
    return session.scalars(select(Reader).where(func.lower(Reader.email) == address.lower())).first()


def request_link(session: Session, email: str) -> None:
    """Queue a sign-in mail for the reader with `email`; nothing for unknown addresses.

    The caller answers the same either way, so the page tells nobody who is a reader.
    """
    reader = find_reader(session, email)
    if reader is not None:
        queue.enqueue(session, "members.sign_in_mail", reader.id)


def issue_token(session: Session, reader_id: str, now: datetime, minutes: int = DEFAULT_MINUTES) -> str:
    """A new sign-in token for the reader (the raw value goes only into the mail)."""
    raw = secrets.token_urlsafe(32)  # 256 random bits
    session.add(SignInToken(reader_id=reader_id, token_hash=_digest(raw),
                            expires_at=now + timedelta(minutes=minutes)))
    session.flush()
    return raw


def redeem(session: Session, raw: str, now: datetime) -> str:
    """Spend a token; returns its reader's id. Raises InvalidToken."""
    token = peek(session, raw, now)
    # Conditional update: of two clicks racing, only one finds used_at empty.
    spent = session.execute(update(SignInToken).where(SignInToken.id == token.id, SignInToken.used_at.is_(None))
                            .values(used_at=now))
    if spent.rowcount != 1:
        raise InvalidToken("used")
    return token.reader_id


def peek(session: Session, raw: str, now: datetime) -> SignInToken:
    """The unused, unexpired token (for the page with the button); raises InvalidToken."""
    if not isinstance(raw, str) or not 20 <= len(raw) <= 100:
        raise InvalidToken("malformed")
    token = session.scalars(select(SignInToken).where(SignInToken.token_hash == _digest(raw))).first()
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise InvalidToken("unknown, used or expired")
    return token


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()
