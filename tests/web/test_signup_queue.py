"""A sign-up request only queues the sign-up: no database work at all, whatever the
address's state; 503 with Retry-After, and nothing queued, while the broker is down. The
message is built by hand (queue.redis_message): a real worker runs it."""
from __future__ import annotations

import contextlib
import re

import pytest
from sqlalchemy import event, select

from newsletter import create_app, db, limits
from newsletter.models import ConsentRecord, Subscriber
from newsletter.redis_url import client as redis_client
from newsletter.web.forms import SIGNUP_NOT_TAKEN
from tests.support.processes import OwnRedis
from tests.web.markup import parse
from tests.web.signups import (close_connections, csrf_token, make_subscriber,  # noqa: F401
                               post_json, post_signup, published, suppress)

STATES = ("new", "pending", "confirmed", "unsubscribed", "suppressed")


@contextlib.contextmanager
def database_work(app):
    """Every connection checkout and statement on the app's engine meanwhile."""
    seen: list[str] = []
    engine = db.engine(app)
    listeners = {"checkout": lambda *_: seen.append("checkout"),
                 "before_cursor_execute": lambda _c, _cur, statement, *_: seen.append(statement)}
    for name, listener in listeners.items():
        event.listen(engine, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners.items():
            event.remove(engine, name, listener)


@pytest.mark.parametrize("state", STATES)
def test_a_signup_request_does_no_database_work(app, client, session, broker, state):
    email = f"{state}@example.com"
    if state != "new":
        make_subscriber(session, email, "confirmed" if state == "suppressed" else state)
    if state == "suppressed":
        suppress(session, email)
    session.commit()
    token = csrf_token(client)

    with database_work(app) as seen:
        api = post_json(client, {"email": email, "consent": True})
        form = post_signup(client, email, token=token)

    assert (api.status_code, form.status_code) == (202, 303)
    assert seen == []
    assert [name for name, _ in published(broker)] == ["subscribers.signup"] * 2


@pytest.mark.slow
def test_a_real_worker_runs_the_queued_signups_of_both_routes(client, session, worker, smtp_server):
    proc = worker(concurrency=1)
    token = csrf_token(client)

    api = post_json(client, {"email": "api@example.com", "consent": True, "article": "harbour"},
                    headers={"User-Agent": "Partner/2"})
    form = post_signup(client, "Form@Example.com", token=token, page="http://newsletter.test/x",
                       headers={"User-Agent": "Browser/1"})

    assert (api.status_code, form.status_code) == (202, 303)
    for email in ("api@example.com", "Form@example.com"):
        [mail] = smtp_server.wait_for(email, timeout=60)
        assert mail["Subject"] == "Confirm your subscription to The Daily Edition", proc.log()[-3000:]
    session.expire_all()
    recorded = session.execute(select(Subscriber.email, ConsentRecord.source, ConsentRecord.article,
                                      ConsentRecord.page, ConsentRecord.user_agent, ConsentRecord.request_id)
                               .join(ConsentRecord).order_by(Subscriber.email)).all()
    assert [row[:5] for row in recorded] == [
        ("Form@example.com", "form", "", "http://newsletter.test/x", "Browser/1"),
        ("api@example.com", "api", "harbour", "", "Partner/2")]
    assert all(re.fullmatch(r"[0-9a-f]{32}", row.request_id) for row in recorded)


# ---------------------------------------------------------------- the broker down

@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def app_on_own_redis(app_config, own_redis):
    """The app with a broker (and limit counters) of its own, which the test stops."""
    app = create_app(app_config | {"REDIS_URL": own_redis.url})
    yield app
    if app.extensions.get("celery") is not None:
        app.extensions["celery"].close()
    limits.close(app)
    db.engine(app).dispose()


def queued_addresses(url: str) -> list[str]:
    r = redis_client(url)
    try:
        return [args[1] for _, args in published(r)]
    finally:
        r.close()


def test_broker_down_answers_503_with_retry_after_and_queues_nothing(app_on_own_redis, own_redis):
    client = app_on_own_redis.test_client()
    token = csrf_token(client)
    assert post_json(client, {"email": "before@example.com", "consent": True}).status_code == 202
    own_redis.stop()

    api = post_json(client, {"email": "reader@example.com", "consent": True})
    form = post_signup(client, "reader@example.com", token=token, article="a-story")

    assert api.status_code == 503
    assert api.headers["Retry-After"] == "30"
    assert api.get_json() == {"error": {"code": "service_unavailable", "message": SIGNUP_NOT_TAKEN}}
    assert form.status_code == 503 and form.headers["Retry-After"] == "30"
    page = parse(form.data)
    assert SIGNUP_NOT_TAKEN in page.find("p", class_="form-error").text()
    assert page.find("input", name="email").attrs["value"] == "reader@example.com"
    assert page.find("input", name="article").attrs["value"] == "a-story"

    own_redis.start()  # back, empty: it kept nothing on disk
    assert post_json(client, {"email": "after@example.com", "consent": True}).status_code == 202
    assert queued_addresses(own_redis.url) == ["after@example.com"]


def test_a_broker_refusing_writes_answers_503_and_queues_nothing(app_on_own_redis, own_redis):
    # Out of memory with no eviction: Redis answers, with an error, rather than going away.
    client = app_on_own_redis.test_client()
    r = redis_client(own_redis.url)
    try:
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("maxmemory", "1")
        refused = post_json(client, {"email": "reader@example.com", "consent": True})
        r.config_set("maxmemory", "0")
    finally:
        r.close()
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
    assert refused.get_json()["error"]["message"] == SIGNUP_NOT_TAKEN
    assert post_json(client, {"email": "after@example.com", "consent": True}).status_code == 202
    assert queued_addresses(own_redis.url) == ["after@example.com"]


def test_a_redis_restart_between_sign_ups_costs_none(app_on_own_redis, own_redis):
    client = app_on_own_redis.test_client()
    assert post_json(client, {"email": "before@example.com", "consent": True}).status_code == 202

    own_redis.restart(down_for=0.1)  # the app's connections are closed, the script forgotten

    assert post_json(client, {"email": "after@example.com", "consent": True}).status_code == 202
    assert queued_addresses(own_redis.url) == ["after@example.com"]


def test_a_sign_up_takes_one_redis_command(app_on_own_redis, own_redis):
    """The limits are counted and the message pushed by one script (newsletter.signup_gate)."""
    client = app_on_own_redis.test_client()
    assert post_json(client, {"email": "first@example.com", "consent": True}).status_code == 202
    r = redis_client(own_redis.url)
    try:
        r.config_resetstat()
        assert post_json(client, {"email": "reader@example.com", "consent": True}).status_code == 202
        stats = r.info("commandstats")
    finally:
        r.close()

    calls = {name.removeprefix("cmdstat_"): stat["calls"] for name, stat in stats.items()
             if not name.startswith(("cmdstat_config", "cmdstat_info"))}
    # The script's own commands are counted too: three limits counted, the message pushed.
    assert calls.pop("evalsha") == 1
    assert calls.pop("lpush") == 1 and calls.pop("incr") == 3
    assert set(calls) <= {"expire", "ttl"}
    assert queued_addresses(own_redis.url) == ["first@example.com", "reader@example.com"]
