"""Flask's `celery_init_app` pattern: every task runs inside the Flask app context."""
from __future__ import annotations

from celery import Celery, Task
from celery.schedules import crontab
from flask import Flask

from newsletter.queue import celery_settings


def celery_init_app(app: Flask) -> Celery:
    """The worker's Celery app, configured from `app` and made the app's publisher."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(celery_settings(app.config))
    celery.conf.update(beat_schedule=beat_schedule(app.config))
    celery.set_default()
    celery.autodiscover_tasks(["workers"], related_name="tasks", force=True)
    celery.autodiscover_tasks(["workers"], related_name="delivery_tasks", force=True)
    celery.autodiscover_tasks(["workers"], related_name="schedule_tasks", force=True)
    celery.autodiscover_tasks(["workers"], related_name="member_tasks", force=True)
    app.extensions["celery"] = celery
    return celery


def beat_schedule(config) -> dict:
    """Periodic work for `celery -A workers beat`."""
    schedule = {}
    if config.get("FEEDS"):
        schedule["poll-feeds"] = {
            "task": "feeds.poll",
            "schedule": 60.0 * int(config["FEED_POLL_MINUTES"]),
        }
    schedule["sweep-deliveries"] = {
        "task": "delivery.sweep",
        "schedule": float(config.get("SEND_SWEEP_SECONDS", 60)),
    }
    if config.get("DAILY_SEND_AT"):
        # Every minute, on the minute; the task itself knows when the day's send is due.
        schedule["daily-send"] = {"task": "schedule.daily_send", "schedule": crontab()}
    return schedule
