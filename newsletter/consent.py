"""Consent: the exact wording a reader agreed to (kept under its hash) and proof of each event.

A ConsentRecord says what was agreed to (the wording's version), when, from where (IP,
user agent, page, article) and through which channel. Records outlive unsubscribing;
erasure removes only their personal parts (newsletter.subscribers.erase).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy.orm import Session

from newsletter import db
from newsletter.models import ConsentRecord, ConsentText, Subscriber, utcnow

DEFAULT_CONSENT_TEXT = ("I agree to receive the Daily Edition by email and accept the "
                        "newsletter terms.")
ACTIONS = ("signup", "confirm", "import", "resubscribe", "unsubscribe")
SOURCES = ("form", "api", "import", "mail")


@dataclass(frozen=True)
class ConsentContext:
    """Where a consent event happened, as the web layer (or the CLI) saw it."""

    ip: str = ""
    user_agent: str = ""
    page: str = ""
    article: str = ""
    source: str = "form"  # one of SOURCES

    def as_json(self) -> dict:
        """The context as a JSON object, for a task's arguments."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict) -> ConsentContext:
        """The context `as_json` gave; unknown keys are ignored, missing ones default."""
        return cls(**{f.name: str(data[f.name]) for f in fields(cls) if f.name in data})


def configured_text(config) -> str:
    """The consent wording in force: CONSENT_TEXT, or the default."""
    return config.get("CONSENT_TEXT") or DEFAULT_CONSENT_TEXT


def wording_version(session: Session, text: str) -> str:
    """The version (SHA-256) of `text`, storing the wording the first time it is seen."""
    version = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if session.get(ConsentText, version) is None:
        db.insert_ignoring_duplicate(session, ConsentText, {"version": version, "text": text}, "version")
    return version


def record_consent(session: Session, subscriber: Subscriber, action: str,
                   ctx: ConsentContext, text: str | None = None,
                   at: datetime | None = None, request_id: str | None = None) -> ConsentRecord:
    """Store proof of one consent event of `subscriber`; `text` is the wording agreed to.

    `request_id` (unique) names the web request the event comes from, when it was queued.
    """
    if action not in ACTIONS or ctx.source not in SOURCES:
        raise ValueError(f"unknown consent action or source: {action!r}, {ctx.source!r}")
    version = wording_version(session, text) if text is not None else None
    record = ConsentRecord(
        subscriber_id=subscriber.id, email_hash=subscriber.email_hash, action=action,
        version=version, at=at or utcnow(), ip=_evidence(ctx.ip, 64),
        user_agent=_evidence(ctx.user_agent, 500), page=_evidence(ctx.page, 1000),
        article=_evidence(ctx.article, 120), source=ctx.source, request_id=request_id)
    session.add(record)
    session.flush()
    return record


def _evidence(value: str, size: int) -> str:
    # What a request said about itself (any client can send a NUL in a form field, a header or
    # JSON): kept without NULs, which PostgreSQL refuses, and cut to the column, never refused.
    return db.without_nul(value)[:size]
