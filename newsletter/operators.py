"""Operators: newsroom staff who run the list, with a password (console) and bearer
tokens (JSON API).

Passwords are kept as scrypt hashes (werkzeug). A token is `nlop_` and 43 characters of
`secrets.token_urlsafe(32)` (256 random bits); only its SHA-256 is stored, so a copy of
the database does not hold usable tokens.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from newsletter import addresses
from newsletter.models import Operator, OperatorToken, utcnow

MIN_PASSWORD_LENGTH = 12
PASSWORD_METHOD = "scrypt"
TOKEN_PREFIX = "nlop_"
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class OperatorError(Exception):
    """Base of the operator errors; the message can be shown to the operator."""


class WeakPassword(OperatorError):
    """The password is too short."""


class OperatorExists(OperatorError):
    """An operator with this email exists already."""


class UnknownOperator(OperatorError):
    """No operator has this email."""


class InvalidToken(OperatorError):
    """The bearer token is malformed, unknown or revoked."""


class InvalidCredentials(OperatorError):
    """The email or the password is wrong (which one is not said)."""


def normalise_email(email: str) -> str:
    """An operator's email as stored: normalised and lowercased (sign-in ignores case)."""
    return addresses.normalise(email).lower()


def create_operator(session: Session, email: str, password: str) -> Operator:
    """A new operator with this email and password (at least 12 characters)."""
    email = normalise_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if _by_email(session, email) is not None:
        raise OperatorExists(f"An operator with the email {email} exists already.")
    operator = Operator(email=email,
                        password_hash=generate_password_hash(password, method=PASSWORD_METHOD))
    session.add(operator)
    session.flush()
    return operator


def by_email(session: Session, email: str) -> Operator:
    """The operator with this email, or UnknownOperator."""
    try:
        operator = _by_email(session, normalise_email(email))
    except addresses.InvalidEmail:
        operator = None
    if operator is None:
        raise UnknownOperator(f"No operator has the email {email}.")
    return operator


def _by_email(session: Session, email: str) -> Operator | None:
    return session.scalar(select(Operator).where(Operator.email == email))


def check_password(session: Session, email: str, password: str) -> Operator:
    """The operator these credentials belong to, or InvalidCredentials."""
    try:
        operator = by_email(session, email)
    except UnknownOperator:
        # Hash anyway, so an unknown email takes as long to refuse as a wrong password.
        check_password_hash(_dummy_hash(), password)
        raise InvalidCredentials("Wrong email or password.") from None
    if not check_password_hash(operator.password_hash, password):
        raise InvalidCredentials("Wrong email or password.")
    return operator


@cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=PASSWORD_METHOD)


def issue_token(session: Session, operator: Operator) -> str:
    """A new bearer token for `operator`; it is shown now and never again."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(OperatorToken(operator_id=operator.id, token_hash=_token_hash(raw)))
    session.flush()
    return raw


def operator_for_token(session: Session, raw: str, now: datetime | None = None) -> Operator:
    """The operator a bearer token belongs to (noting its use), or InvalidToken."""
    token = _live_token(session, raw)
    now = now or utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.flush()
    return session.get(Operator, token.operator_id)


def revoke_token(session: Session, raw: str, now: datetime | None = None) -> Operator:
    """Revoke a bearer token for good; returns its operator. InvalidToken if not live."""
    token = _live_token(session, raw)
    token.revoked_at = now or utcnow()
    session.flush()
    return session.get(Operator, token.operator_id)


def revoke_all_tokens(session: Session, operator: Operator, now: datetime | None = None) -> int:
    """Revoke every live token of `operator`; returns how many there were."""
    live = list(session.scalars(select(OperatorToken).where(
        OperatorToken.operator_id == operator.id, OperatorToken.revoked_at.is_(None))))
    for token in live:
        token.revoked_at = now or utcnow()
    session.flush()
    return len(live)


def _live_token(session: Session, raw: str) -> OperatorToken:
    if not isinstance(raw, str) or not raw.startswith(TOKEN_PREFIX):
        raise InvalidToken("This is not an operator token.")
    token = session.scalar(select(OperatorToken).where(
        OperatorToken.token_hash == _token_hash(raw)))
    if token is None or token.revoked_at is not None:
        raise InvalidToken("The token is unknown or revoked.")
    return token


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()
