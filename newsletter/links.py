"""Links in mails: signed per-subscriber links (unsubscribe, manage) and confirmation links.

A signed token is `<subscriber id>.<MAC>`, the MAC being the first 32 hex digits (128
bits) of HMAC-SHA256 over the purpose, the id and the subscriber's `token_key`, so a
link works for one purpose only, and replacing `token_key` revokes every old link.
"""
from __future__ import annotations

import hashlib
import hmac
import re

from sqlalchemy.orm import Session

from newsletter.models import Subscriber

PURPOSES = ("unsubscribe", "manage")
MAC_LENGTH = 32
_TOKEN = re.compile(r"([1-9][0-9]{0,17})\.([0-9a-f]{32})")


class InvalidLink(Exception):
    """The signed link is malformed, names no subscriber, or its signature does not match."""


def make_token(subscriber: Subscriber, purpose: str, secret_key: str) -> str:
    """The signed token of `subscriber` for `purpose`."""
    return f"{subscriber.id}.{_mac(subscriber, purpose, secret_key)}"


def subscriber_for_token(session: Session, token: str, purpose: str,
                         secret_key: str) -> Subscriber:
    """The subscriber a signed token stands for, or InvalidLink."""
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise InvalidLink("malformed link")
    subscriber = session.get(Subscriber, int(match[1]))
    if subscriber is None:
        raise InvalidLink("no such subscriber")
    if not hmac.compare_digest(match[2], _mac(subscriber, purpose, secret_key)):
        raise InvalidLink("bad signature")
    return subscriber


def unsubscribe_url(base_url: str, subscriber: Subscriber, secret_key: str) -> str:
    """The absolute unsubscribe link (GET: a page; POST One-Click: unsubscribes)."""
    return f"{base_url.rstrip('/')}/newsletter/unsubscribe/{make_token(subscriber, 'unsubscribe', secret_key)}"


def manage_url(base_url: str, subscriber: Subscriber, secret_key: str) -> str:
    """The absolute link to the subscriber's own page (pause, export, erase)."""
    return f"{base_url.rstrip('/')}/newsletter/manage/{make_token(subscriber, 'manage', secret_key)}"


def confirm_url(base_url: str, raw_token: str) -> str:
    """The absolute double opt-in link for a raw confirmation token."""
    return f"{base_url.rstrip('/')}/newsletter/confirm/{raw_token}"


def _mac(subscriber: Subscriber, purpose: str, secret_key: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r}")
    message = f"{purpose}:{subscriber.id}:{subscriber.token_key}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:MAC_LENGTH]
