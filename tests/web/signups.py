"""Helpers for the subscription tests: rows in each state, CSRF tokens, the broker's messages
and running them.

Test modules import the fixtures they use from here (`from tests.web.signups import ...`).
A sign-up request only queues the sign-up: tests that look at the database afterwards
first run what was queued (`run_queued`), in this process, as a worker would.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import timedelta

import pytest

from newsletter import limits, links
from newsletter.addresses import email_hash, normalise
from newsletter.models import ConfirmationToken, Subscriber, Suppression, utcnow
from tests.web.markup import parse

SECRET_KEY = "test-secret-key"  # tests/conftest.py's app_config
BROKER_LIST = "celery"  # kombu's Redis transport pushes the default queue's messages here


@pytest.fixture(autouse=True)
def close_connections(app):
    """Close what sign-ups opened: the Celery producer's and the limiter's Redis connections."""
    yield
    if app.extensions.get("celery") is not None:
        app.extensions["celery"].close()
    limits.close(app)


def published(broker) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in the broker, oldest first."""
    return [decoded(raw) for raw in reversed(broker.lrange(BROKER_LIST, 0, -1))]  # LPUSH: newest first


def decoded(raw: bytes) -> tuple[str, list]:
    envelope = json.loads(raw)
    args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    return envelope["headers"]["task"], args


@pytest.fixture
def run_queued(app, broker):
    """Call to run every task waiting in the broker, oldest first, in this process as a
    worker would (on the test's database, Redis and SMTP server); returns their names."""
    from workers.celery_app import celery_init_app

    celery = None

    def run() -> list[str]:
        nonlocal celery
        celery = celery or celery_init_app(app)
        names = []
        while (raw := broker.rpop(BROKER_LIST)) is not None:
            name, args = decoded(raw)
            result = celery.tasks[name].apply(args=args)
            assert result.successful(), result.traceback
            names.append(name)
        return names

    yield run
    if celery is not None:
        celery.close()


def signup_message(broker) -> list:
    """The arguments of the one sign-up waiting in the broker (it stays there)."""
    [(name, args)] = published(broker)
    assert name == "subscribers.signup"
    return args


# ---------------------------------------------------------------- rows

def make_subscriber(session, email: str = "reader@example.com", state: str = "confirmed",
                    **values) -> Subscriber:
    """A Subscriber row in `state`, made directly. Flushes only."""
    email = normalise(email)
    now = utcnow()
    stamps = {"confirmed": {"confirmed_at": now},
              "unsubscribed": {"confirmed_at": now, "unsubscribed_at": now}}.get(state, {})
    subscriber = Subscriber(email=email, email_hash=email_hash(email), state=state,
                            token_key=secrets.token_hex(16), **(stamps | values))
    session.add(subscriber)
    session.flush()
    return subscriber


def suppress(session, email: str, reason: str = "hard_bounce") -> None:
    session.add(Suppression(email_hash=email_hash(normalise(email)), reason=reason))
    session.flush()


def make_confirmation_token(session, subscriber: Subscriber, *, expires_in=timedelta(hours=48),
                            used: bool = False) -> str:
    """A raw confirmation token of `subscriber`, stored hashed as the domain stores it."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(ConfirmationToken(
        subscriber_id=subscriber.id, token_hash=hashlib.sha256(raw.encode()).hexdigest(),
        created_at=now, expires_at=now + expires_in, used_at=now if used else None))
    session.flush()
    return raw


def link_token(subscriber: Subscriber, purpose: str) -> str:
    return links.make_token(subscriber, purpose, SECRET_KEY)


# ---------------------------------------------------------------- pages and forms

def csrf_token(client, path: str = "/newsletter") -> str:
    """The CSRF token of `path` as the page shows it (it also sets the session cookie)."""
    response = client.get(path)
    assert response.status_code == 200, response.status
    return token_in(response.data)


def token_in(html: bytes) -> str:
    tokens = {n.attrs["value"] for n in parse(html).find_all("input", name="csrf_token")}
    assert len(tokens) == 1, tokens
    return tokens.pop()


def post_signup(client, email: str = "reader@example.com", consent: bool = True, *,
                token: str | None = None, headers=None, environ_base=None, **fields):
    """POST the sign-up form as a browser does, with the CSRF token of /newsletter."""
    data = {"email": email, "website": "", "article": "", "page": ""} | fields
    if consent:
        data["consent"] = "yes"
    data["csrf_token"] = token if token is not None else csrf_token(client)
    return client.post("/newsletter/signup", data=data, headers=headers or {},
                       environ_base=environ_base or {})


def post_json(client, body, **kwargs):
    return client.post("/api/v1/signups", json=body, **kwargs)


def count(session, model=Subscriber) -> int:
    from sqlalchemy import func, select

    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))
