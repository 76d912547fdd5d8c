"""Tables. Plain mapped classes: no behaviour, no commits; the domain modules own logic."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, Integer, String, Text, TypeDecorator
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
