"""Tables. Plain mapped classes: no behaviour, no commits; the domain modules own logic."""
from __future__ import annotations

from datetime import date as date_type
from datetime import datetime, timezone

from sqlalchemy import (JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.db import Base


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use an aware one")
            value = value.astimezone(timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        # PostgreSQL answers in the server's zone; we always hand out UTC.
        return value.astimezone(timezone.utc)


class Article(Base):
    """A story. `body` is its blocks in order: paragraphs and photo captions."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Where the story came from (front matter url or id, a feed entry id, a file name):
    # ingesting the same source again updates this row and keeps its slug.
    source_key: Mapped[str] = mapped_column(String(500), unique=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    headline: Mapped[str] = mapped_column(String(300))
    byline: Mapped[str] = mapped_column(String(300), default="")
    section: Mapped[str] = mapped_column(String(100), default="")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    access: Mapped[str] = mapped_column(String(20), default="public")
    url: Mapped[str] = mapped_column(String(1000), default="")
    body: Mapped[list] = mapped_column(JSON, default=list)
    notes: Mapped[list] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FeedFetch(Base):
    """One request to fetch a feed URL, done by a worker; the CLI waits on this row."""

    __tablename__ = "feed_fetches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    state: Mapped[str] = mapped_column(String(20), default="queued")  # queued, done, failed
    slugs: Mapped[list] = mapped_column(JSON, default=list)
    errors: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# ---------------------------------------------------------------- the Daily Edition list

class Subscriber(Base):
    """A reader on the Daily Edition list, in one of STATES.

    `email` is the normalised address (email-validator); `email_hash` is its SHA-256, the
    only trace an erased or suppressed address leaves. `token_key` salts the signed
    per-subscriber links (unsubscribe, manage): replacing it revokes every old link.
    """

    __tablename__ = "subscribers"
    STATES = ("pending", "confirmed", "unsubscribed")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    token_key: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(20), default="form")  # form, api, import
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ConsentText(Base):
    """A consent wording, kept forever under its version (SHA-256 of the text)."""

    __tablename__ = "consent_texts"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentRecord(Base):
    """Proof of one consent event: what was agreed to, when, where and from where.

    Kept after unsubscribe; on erasure the personal parts (subscriber, ip, user agent)
    are removed and the email hash stays.
    """

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("subscribers.id", ondelete="SET NULL"), nullable=True, index=True)
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(20))  # signup, confirm, import, resubscribe, unsubscribe
    version: Mapped[str | None] = mapped_column(String(64), ForeignKey("consent_texts.version"), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    page: Mapped[str] = mapped_column(String(1000), default="")
    article: Mapped[str] = mapped_column(String(120), default="")
    source: Mapped[str] = mapped_column(String(20), default="form")  # form, api, import, mail
    # The web's id of the sign-up request this records: a redelivered message finds it
    # and records nothing twice. None for records not made from a queued sign-up.
    request_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True, index=True)


class ConfirmationToken(Base):
    """A double opt-in token: only its SHA-256 is stored; single use; expires."""

    __tablename__ = "confirmation_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Suppression(Base):
    """An address that must never get mail again, by hash (erased addresses included)."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(20))  # hard_bounce, soft_bounces, complaint, erased, manual
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BounceEvent(Base):
    """One bounce or complaint report about an address (by hash), for the suppression rules."""

    __tablename__ = "bounce_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # hard, soft, complaint
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[str] = mapped_column(String(1000), default="")


# ---------------------------------------------------------------- operators

class Operator(Base):
    """A newsroom operator: signs in to the console, holds API tokens."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OperatorToken(Base):
    """A bearer token for the operator JSON API; only its SHA-256 is stored."""

    __tablename__ = "operator_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator_id: Mapped[int] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# ---------------------------------------------------------------- editions and delivery

class Edition(Base):
    """One issue of the Daily Edition: a date, ordered stories, a subject and a preheader.

    `version` grows with every change to what recipients get; a send in progress picks
    up the new version for the recipients it has not reached yet.
    """

    __tablename__ = "editions"
    STATES = ("draft", "sending", "paused", "cancelled", "sent")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    date: Mapped[date_type] = mapped_column(Date, index=True)
    subject: Mapped[str] = mapped_column(String(300))
    preheader: Mapped[str] = mapped_column(String(300), default="")
    intro: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    send_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EditionArticle(Base):
    """A story in an edition, at its position; pulled stories are removed from this table."""

    __tablename__ = "edition_articles"
    __table_args__ = (UniqueConstraint("edition_id", "article_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    edition_id: Mapped[int] = mapped_column(Integer, ForeignKey("editions.id", ondelete="CASCADE"), index=True)
    article_id: Mapped[int] = mapped_column(Integer, ForeignKey("articles.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)


class Delivery(Base):
    """The ledger: one row per (edition, subscriber) planned, and what became of it.

    state: pending (not yet accepted by the SMTP server), sent (250 received), failed
    (permanent refusal, or retries exhausted), skipped (unsubscribed, paused or suppressed
    by the time the send reached them, or the send was cancelled).
    """

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("edition_id", "subscriber_id"),
                      Index("ix_deliveries_edition_id_state", "edition_id", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    edition_id: Mapped[int] = mapped_column(Integer, ForeignKey("editions.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    # Who may send this row now, and until when (newsletter.ledger): "q…" a queued batch
    # task's reservation, "w…" a running task's lease; both lapse at claimed_until.
    claimed_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# ---------------------------------------------------------------- membership (Stripe)

class Reader(Base):
    """A reader with an account: buys the membership, signs in by a link in a mail.

    `id` is random (not a counter) because it travels to Stripe in client_reference_id
    and subscription metadata, and comes back in webhooks.
    """

    __tablename__ = "readers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True, nullable=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Membership(Base):
    """One Stripe subscription, as Stripe last described it (re-fetched, never patched).

    `notified_status` is the status the reader was last mailed about, so a welcome,
    payment-failed or ended mail goes once per change however often events repeat.
    """

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[str] = mapped_column(String(32), ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(30))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    past_due_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Attribution from the checkout's subscription_data.metadata (newsletter.prompts).
    prompt: Mapped[str | None] = mapped_column(String(50), nullable=True)
    prompt_variant: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    source_article: Mapped[str | None] = mapped_column(String(120), nullable=True)
    # "click" (the checkout form named the variant) or "assigned" (the reader's bucket).
    prompt_path: Mapped[str | None] = mapped_column(String(10), nullable=True)
    notified_status: Mapped[str | None] = mapped_column(String(30), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class StripeEvent(Base):
    """A webhook event id seen once: the unique key that makes repeats harmless."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SignInToken(Base):
    """A member's magic sign-in link: only its SHA-256 is stored; single use, short-lived."""

    __tablename__ = "sign_in_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reader_id: Mapped[str] = mapped_column(String(32), ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
