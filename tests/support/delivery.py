"""Rows and helpers for the delivery tests: many subscribers at once, an edition, the broker."""
from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import date

from sqlalchemy import insert, select

from newsletter import addresses, db, editions
from newsletter.models import Delivery, Edition, Subscriber
from tests.factories import image, make_article, paragraph

# Short timings, so that leases lapse, retries come and the sweeper acts within seconds.
FAST = {
    "SEND_BATCH_SIZE": 100,
    "SEND_LEASE": 4,
    "SEND_QUEUE_GRACE": 6,
    "SEND_PLAN_GRACE": 3,
    "SEND_RETRY_BASE": 0.2,
    "SEND_RETRY_MAX": 1,
    "SEND_SWEEP_SECONDS": 1,
}


def address(n: int) -> str:
    return f"reader{n}@example.org"


def make_subscribers(session, count: int, *, start: int = 1, state: str = "confirmed", **values) -> list[int]:
    """`count` subscribers reader<start>…@example.org in one INSERT; their ids. Flushes only."""
    rows = [{"email": address(n), "email_hash": addresses.email_hash(address(n)), "state": state,
             "token_key": secrets.token_hex(16), "name": f"Reader {n}", "source": "import", **values}
            for n in range(start, start + count)]
    session.execute(insert(Subscriber), rows)
    emails = [r["email"] for r in rows]
    return list(session.scalars(select(Subscriber.id).where(Subscriber.email.in_(emails))
                                .order_by(Subscriber.id)))


def make_edition(session, stories: int = 2) -> Edition:
    """A draft edition of two stories, the first with a photo. Flushes only."""
    slugs = []
    for n in range(stories):
        body = [paragraph(f"Lede of story {n}: the council met on Tuesday."),
                image(f"The harbour at dawn {n}.", "Ana Diaz/Wire")]
        slugs.append(make_article(session, body=body, headline=f"Headline {n}").slug)
    return editions.create_edition(session, day=date(2026, 11, 25), slugs=slugs, count=stories,
                                   tz="UTC", subject="The Daily Edition: harbour news")


def deliveries(session, edition_id: int) -> list[Delivery]:
    session.expire_all()
    return list(session.scalars(select(Delivery).where(Delivery.edition_id == edition_id)
                                .order_by(Delivery.id)))


def states(session, edition_id: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for d in deliveries(session, edition_id):
        found[d.state] = found.get(d.state, 0) + 1
    return found


def published(broker) -> list[tuple[str, list, dict]]:
    """(task name, args, headers) of every message waiting in the broker, oldest first."""
    messages = []
    for raw in reversed(broker.lrange("celery", 0, -1)):
        envelope = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        messages.append((envelope["headers"]["task"], args, envelope["headers"]))
    return messages


def wait_until(check, timeout: float, interval: float = 0.2):
    """Call `check` until it returns something true, or `timeout` seconds pass; its last value."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(interval)


def edition_state(app, edition_id: int) -> str:
    with app.app_context():
        return db.session().scalar(select(Edition.state).where(Edition.id == edition_id))
