"""Queuing work for the Celery workers, only after the transaction that justifies it commits.

`enqueue(session, "task.name", *ids)` is the one way the domain asks for background
work: by task name (so the domain never imports workers/) and with ids (never ORM
objects). The message is published when the session commits and dropped when it rolls
back, so a worker never looks for a row that is not there yet (warehouse's after-commit
hook).

`redis_message` builds, without kombu, the message `send_task` would push onto Redis: for
the sign-up request, which has no transaction to wait for and pushes its message in
the same round trip as its rate limits (newsletter.signup_gate).
"""
from __future__ import annotations

import base64
import functools
import json
import os
import socket
import uuid

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

# Celery's default queue (no task is routed elsewhere): kombu's Redis transport keeps its
# messages in a list of this name.
DEFAULT_QUEUE = "celery"
# Celery's argsrepr length (amqp.argsrepr_maxsize).
ARGSREPR_LENGTH = 1024
NO_WORKFLOW = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


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


def publish(task_name: str, args: tuple, **options) -> None:
    """Publish `task_name(*args)` now through the Celery app; QueueUnavailable if the broker does not take it."""
    try:
        # Celery's own repr of the arguments (saferepr) costs more than the rest of a
        # publish; the plain repr, cut to Celery's length, says as much.
        celery_app().send_task(task_name, args=list(args), argsrepr=repr(args)[:ARGSREPR_LENGTH],
                               kwargsrepr="{}", ignore_result=True, **options)
    except OperationalError as error:
        raise QueueUnavailable(f"could not queue {task_name}: {error}") from error


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    for _transaction, name, args, options in session.info.pop(_PENDING, []):
        publish(name, args, **options)


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


def redis_message(task_name: str, args: tuple) -> bytes:
    """The message `publish(task_name, args)` pushes onto DEFAULT_QUEUE's Redis list, built
    without kombu: Celery's task protocol 2 in kombu's Redis envelope.

    For tasks that take JSON arguments, run now and keep no result. It mirrors
    celery/app/amqp.py (as_task_v2) and kombu/transport/redis.py (_put, with the
    virtual channel's delivery tag and base64 body); tests/test_queue.py compares it
    with send_task's own, and tests/web/test_signup_queue.py has a real worker run it.
    """
    task_id, argsrepr = str(uuid.uuid4()), repr(args)[:ARGSREPR_LENGTH]
    headers = {
        "lang": "py", "task": task_name, "id": task_id, "shadow": None, "eta": None,
        "expires": None, "group": None, "group_index": None, "retries": 0,
        "timelimit": [None, None], "root_id": task_id, "parent_id": None,
        "argsrepr": argsrepr, "kwargsrepr": "{}", "origin": _origin(),
        "ignore_result": True, "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
    }
    # kombu copies the publish options (argsrepr, kwargsrepr) into the properties too.
    properties = {
        "correlation_id": task_id, "reply_to": "", "argsrepr": argsrepr, "kwargsrepr": "{}",
        "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": DEFAULT_QUEUE},
        "priority": 0, "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
    }
    body = json.dumps([list(args), {}, NO_WORKFLOW]).encode()
    return json.dumps({"body": base64.b64encode(body).decode("ascii"), "content-encoding": "utf-8",
                       "content-type": "application/json", "headers": headers,
                       "properties": properties}).encode()


def _origin() -> str:
    # Celery's name for a process that is not a worker (celery.utils.nodenames.anon_nodename).
    return f"gen{os.getpid()}@{_hostname()}"


@functools.cache
def _hostname() -> str:
    return socket.gethostname()
