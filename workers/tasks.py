"""Celery tasks: each takes ids, opens nothing itself, and calls one domain function."""
from __future__ import annotations

from celery import shared_task

from newsletter import db, feeds


@shared_task(name="feeds.fetch")
def fetch_feed(fetch_id: int) -> None:
    """Fetch and ingest the feed of one FeedFetch row."""
    session = db.session()
    feeds.run_fetch(session, fetch_id)
    session.commit()


@shared_task(name="feeds.poll")
def poll_feeds() -> None:
    """Queue a fetch for every configured feed (beat runs this)."""
    session = db.session()
    feeds.queue_configured(session)
    session.commit()
