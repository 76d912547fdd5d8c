"""Queuing work for the Celery workers, only after the transaction that justifies it commits.

`enqueue(session, "task.name", *ids)` is the one way the domain asks for background
work: by task name (so the domain never imports workers/) and with ids (never ORM
objects). The message is published when the session commits and dropped when it rolls
back, so a worker never looks for a row that is not there yet (warehouse's after-commit
hook).
"""
from __future__ import annotations

from celery import Celery
from flask import Flask, current_app
from kombu.exceptions import OperationalError
from sqlalchemy import event
from sqlalchemy.orm import Session

from newsletter.redis_url import for_kombu

_PENDING = "newsletter.queue.pending"

# Redis redelivers a task that is not acknowledged within this many seconds. Tasks ack
# late (after they ran), so this must exceed the longest task; every retry delay and
# ETA we use stays far below it (Celery's Redis caveats: a countdown longer than this
# runs the task again and again).
VISIBILITY_TIMEOUT = 3600

# The web's publisher: a broker that does not answer within these seconds is down for
# this request (the reader is told to try again) rather than a request left hanging.
PUBLISH_TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 2}


class QueueUnavailable(Exception):
    """The broker did not take a message: the work of the commit that queued it was not published."""


def celery_settings(config) -> dict:
    """Celery settings from the app's configuration; the web and the workers share them."""
    # Without Redis (a bare `pip install` with nothing running) messages go nowhere
    # useful; `newsletter dev` and every deployment set NEWSLETTER_REDIS_URL.
    broker = for_kombu(config["REDIS_URL"]) if config.get("REDIS_URL") else "memory://"
    transport = {"visibility_timeout": VISIBILITY_TIMEOUT}
    return {
        "broker_url": broker,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "result_backend": None,
        "task_ignore_result": True,
        # Tasks are idempotent: acknowledge after running, so a worker that dies
        # mid-task leaves the message to be delivered again, one at a time per process.
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        "worker_hijack_root_logger": False,
    }


def init_app(app: Flask) -> None:
    # The producer is made on first use; a worker process replaces it with the full
    # Celery app of workers/ (workers.celery_app.celery_init_app) before that.
    app.extensions.setdefault("celery", None)


def celery_app(app: Flask | None = None) -> Celery:
    """The Celery app that publishes our tasks (the worker's own in a worker process)."""
    app = app or current_app
    if app.extensions.get("celery") is None:
        producer = Celery("newsletter", set_as_current=False)
        settings = celery_settings(app.config)
        settings["broker_transport_options"] |= PUBLISH_TIMEOUTS
        producer.conf.update(settings)
        app.extensions["celery"] = producer
    return app.extensions["celery"]


def enqueue(session: Session, task_name: str, *args, countdown: float | None = None) -> None:
    """Publish `task_name(*args)` once `session` commits; forget it if it rolls back.

    `countdown`: run it no sooner than this many seconds after the commit (keep it far
    below VISIBILITY_TIMEOUT).
    """
    if not session.in_transaction():
        # Begin now, so a rollback before the first query still has a transaction to
        # end, and so the work belongs to one.
        session.begin()
    transaction = session.get_nested_transaction() or session.get_transaction()
    options = {"countdown": countdown} if countdown else {}
    session.info.setdefault(_PENDING, []).append((transaction, task_name, args, options))


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    if pending:
        celery = celery_app()
        for _transaction, name, args, options in pending:
            try:
                # Celery's own repr of the arguments (saferepr) costs more than the rest
                # of a publish; the plain repr, cut to Celery's length, says as much.
                celery.send_task(name, args=list(args), argsrepr=repr(args)[:1024], kwargsrepr="{}",
                                 ignore_result=True, **options)
            except OperationalError as error:
                raise QueueUnavailable(f"could not queue {name}: {error}") from error


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, rolled_back) -> None:
    # A savepoint's rollback drops only the work queued inside it; the work of the
    # enclosing transaction still waits for its commit.
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [p for p in pending if not _inside(p[0], rolled_back)]


def _inside(transaction, ancestor) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False
