"""Celery tasks of edition delivery: thin shims over newsletter.delivery and newsletter.sending.

Each commits what its domain call did; the domain functions commit through the
`checkpoint` they are given where a send must be recorded at once (after each 250).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

from celery import shared_task
from flask import current_app
from sqlalchemy.orm import Session

from newsletter import db, delivery, mail, sending, throttle
from newsletter.redis_url import client

log = logging.getLogger(__name__)

SWEEP_LOCK = "newsletter:delivery-sweep"


@shared_task(name="delivery.plan")
def plan_edition(edition_id: int) -> int:
    """Snapshot the edition's recipients into the ledger and queue its batches."""
    session = db.session()
    settings = delivery.SendSettings.from_config(current_app.config)
    planned = delivery.plan(session, edition_id, settings, checkpoint=session.commit)
    session.commit()
    log.info("edition %s: %s deliveries planned", edition_id, planned)
    return planned


@shared_task(name="delivery.send_batch")
def send_batch(edition_id: int, first_id: int, last_id: int, reservation: str | None = None) -> dict:
    """Send the pending deliveries first_id..last_id of an edition over one connection."""
    config = current_app.config
    limiter = throttle.limiter(config)
    try:
        with batch_session() as session, mail.sender() as outbox:
            outcome = sending.send_batch(
                session, outbox, limiter, edition_id, first_id, last_id, reservation,
                settings=delivery.SendSettings.from_config(config),
                message=sending.MessageSettings.from_config(config), checkpoint=session.commit)
            session.commit()
    finally:
        limiter.close()
    return vars(outcome)


@contextmanager
def batch_session() -> Iterator[Session]:
    """A session on one connection, kept for the whole batch, in autocommit.

    Every statement of a batch stands alone and one follows each message: in autocommit
    each is committed as it runs, with no BEGIN or COMMIT round trips, and holding one
    connection spares a pool checkout (and its pre-ping) per message.
    """
    with db.engine().connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        if connection.dialect.name == "postgresql" and not current_app.config["SEND_SYNCHRONOUS_COMMIT"]:
            # See SEND_SYNCHRONOUS_COMMIT (newsletter.config, docs/delivery.md).
            connection.exec_driver_sql("SET synchronous_commit TO off")
        session = Session(bind=connection, expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("RESET synchronous_commit")


@shared_task(name="delivery.sweep")
def sweep() -> None:
    """Queue again the work nobody is doing; one sweeper at a time (a Redis lock)."""
    config = current_app.config
    redis = client(config["REDIS_URL"])
    lock = redis.lock(SWEEP_LOCK, timeout=max(30, 2 * int(config["SEND_SWEEP_SECONDS"])))
    try:
        if not lock.acquire(blocking=False):
            return
        try:
            session = db.session()
            report = delivery.sweep(session, delivery.SendSettings.from_config(config))
            session.commit()
        finally:
            lock.release()
        if report.planned or report.requeued or report.finished:
            log.info("delivery sweep: %s", report)
    finally:
        redis.close()
