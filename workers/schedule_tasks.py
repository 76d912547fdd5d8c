"""The daily schedule's task: beat runs it every minute; it sends the day's edition once.

A shim over newsletter.schedule.daily_send, inside a Redis lock (SET NX EX) so that two
beats, or a slow run and the next minute's, never decide at the same time; the
database lock of daily_send holds even when Redis forgets this one.
"""
from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app

from newsletter import db, schedule
from newsletter.models import utcnow
from newsletter.redis_url import client

log = logging.getLogger(__name__)

LOCK = "newsletter:daily-send"
LOCK_SECONDS = 300  # far longer than a run (a few queries), far shorter than a day


@shared_task(name="schedule.daily_send")
def daily_send() -> dict:
    """Create and send the day's edition when it is due; its outcome, as a dict."""
    config = current_app.config
    settings = schedule.DailySettings.from_config(config)
    redis = client(config["REDIS_URL"])
    try:
        lock = redis.lock(LOCK, timeout=LOCK_SECONDS)
        if not lock.acquire(blocking=False):
            return {"outcome": "busy"}
        try:
            session = db.session()
            result = schedule.daily_send(session, utcnow(), settings)
            session.commit()
        finally:
            lock.release()
    finally:
        redis.close()
    _log(result)
    return result.as_dict()


def _log(result: schedule.DailyResult) -> None:
    if result.outcome == "started":
        log.info("daily send %s: edition %s started", result.day, result.edition_id)
    elif result.outcome == "skipped":
        log.warning("daily send %s skipped: %s", result.day, result.reason)
