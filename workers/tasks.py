"""Celery tasks: each takes ids, opens nothing itself, and calls one domain function."""
from __future__ import annotations

from celery import shared_task
from flask import current_app
from sqlalchemy.exc import DBAPIError

from newsletter import db, feeds


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
