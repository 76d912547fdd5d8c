"""Email addresses: validation and normalisation (email-validator), and the hash we keep.

Every address we store went through `normalise`; `email_hash` is the only trace an
erased or suppressed address leaves, so case variants of one mailbox hash alike.
"""
from __future__ import annotations

import functools
import hashlib

from email_validator import EmailNotValidError, validate_email

# RFC 5321's path limit less the angle brackets: longer addresses cannot be delivered.
MAX_LENGTH = 254
FORBIDDEN = ("\r", "\n", "\0")


class InvalidEmail(ValueError):
    """The input is not a usable email address; the message can be shown to the reader."""


def normalise(raw: str) -> str:
    """The normalised form of `raw` (IDN and unicode allowed), or InvalidEmail."""
    if not isinstance(raw, str) or any(c in raw for c in FORBIDDEN):
        raise InvalidEmail("Enter an email address on a single line.")
    raw = raw.strip(" \t")
    if not raw:
        raise InvalidEmail("Enter your email address.")
    if len(raw) > MAX_LENGTH:
        raise InvalidEmail(f"An email address can be at most {MAX_LENGTH} characters long.")
    return _normalised(raw)


# A sign-up request normalises its address twice (its per-address rate limit, then the
# form), so the last results are kept; failures are not (InvalidEmail is raised again).
@functools.lru_cache(maxsize=256)
def _normalised(raw: str) -> str:
    return _validated(raw).normalized


def for_transport(email: str) -> str:
    """`email` with an ASCII (punycode) domain when its local part allows, for mail headers."""
    return _validated(email).ascii_email or email


def email_hash(email: str) -> str:
    """SHA-256 hex of a normalised address, lowercased so that case variants match."""
    return hashlib.sha256(email.lower().encode("utf-8")).hexdigest()


def _validated(raw: str):
    try:
        return validate_email(raw, check_deliverability=False)
    except EmailNotValidError as e:
        raise InvalidEmail("Enter a valid email address, like name@example.com.") from e
