"""Rate limits on the sign-up routes (per IP, per address; Redis storage), and ProxyFix."""
from __future__ import annotations

import socket

import pytest
from sqlalchemy import select

from newsletter import create_app, db, limits
from newsletter.models import ConsentRecord
from newsletter.redis_url import client as redis_client
from tests.web.markup import parse
from tests.web.signups import count, csrf_token, post_json, post_signup, published, run_queued  # noqa: F401

LOOSE = "1000 per minute"


@pytest.fixture
def make_app(app_config):
    """Apps with their own limits; everything they open is closed afterwards."""
    made = []

    def make(**config):
        app = create_app(app_config | config)
        made.append(app)
        return app

    yield make
    for app in made:
        if app.extensions.get("celery") is not None:
            app.extensions["celery"].close()
        limits.close(app)
        db.engine(app).dispose()


def sign_up_json(client, email, ip="198.51.100.1"):
    return post_json(client, {"email": email, "consent": True}, environ_base={"REMOTE_ADDR": ip})


def assert_retry_after(response):
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 3601


# ---------------------------------------------------------------- per IP

def test_per_ip_limit_on_the_api_answers_429_json_with_retry_after(make_app, session, run_queued):
    client = make_app(SIGNUP_LIMIT_PER_IP="2 per minute", SIGNUP_LIMIT_PER_ADDRESS=LOOSE).test_client()

    answers = [sign_up_json(client, f"r{i}@example.com") for i in range(3)]
    run_queued()

    assert [a.status_code for a in answers] == [202, 202, 429]
    assert_retry_after(answers[2])
    assert answers[2].get_json()["error"]["code"] == "too_many_requests"
    assert "try again later" in answers[2].get_json()["error"]["message"]
    assert count(session) == 2


def test_per_ip_limit_on_the_form_answers_a_429_page(make_app, session, run_queued):
    client = make_app(SIGNUP_LIMIT_PER_IP="1 per minute", SIGNUP_LIMIT_PER_ADDRESS=LOOSE).test_client()
    token = csrf_token(client)

    first = post_signup(client, "a@example.com", token=token)
    second = post_signup(client, "b@example.com", token=token)
    run_queued()

    assert (first.status_code, second.status_code) == (303, 429)
    assert_retry_after(second)
    assert second.mimetype == "text/html"
    assert "try again later" in parse(second.data).find("div", class_="error-page").text()
    assert count(session) == 1


def test_both_routes_share_the_per_ip_count(make_app):
    client = make_app(SIGNUP_LIMIT_PER_IP="2 per minute", SIGNUP_LIMIT_PER_ADDRESS=LOOSE).test_client()
    token = csrf_token(client)

    post_signup(client, "a@example.com", token=token)
    sign_up_json(client, "b@example.com", ip="127.0.0.1")

    assert post_signup(client, "c@example.com", token=token).status_code == 429
    assert sign_up_json(client, "d@example.com", ip="127.0.0.1").status_code == 429


def test_invalid_requests_count_against_the_ip(make_app):
    client = make_app(SIGNUP_LIMIT_PER_IP="2 per minute", SIGNUP_LIMIT_PER_ADDRESS=LOOSE).test_client()

    statuses = [sign_up_json(client, "not an address").status_code for _ in range(3)]

    assert statuses == [422, 422, 429]


def test_answers_that_queue_nothing_count_too(make_app, broker):
    client = make_app(SIGNUP_LIMIT_PER_IP="3 per minute", SIGNUP_LIMIT_PER_ADDRESS=LOOSE).test_client()
    token = csrf_token(client)

    statuses = [client.post("/api/v1/signups", data="x", content_type="text/plain").status_code,
                post_signup(client, "bot@example.com", token=token, website="spam").status_code,
                post_signup(client, "no good", token=token).status_code,
                sign_up_json(client, "reader@example.com", ip="127.0.0.1").status_code]

    assert statuses == [415, 303, 422, 429]
    assert published(broker) == []


def test_a_refused_signup_queues_nothing(make_app, broker):
    client = make_app(SIGNUP_LIMIT_PER_IP=LOOSE, SIGNUP_LIMIT_PER_ADDRESS="1 per hour").test_client()
    token = csrf_token(client)

    statuses = [sign_up_json(client, "reader@example.com").status_code,
                sign_up_json(client, "reader@example.com").status_code,
                post_signup(client, "reader@example.com", token=token).status_code]

    assert statuses == [202, 429, 429]
    assert [args[1] for _, args in published(broker)] == ["reader@example.com"]


def test_each_ip_has_its_own_count(make_app):
    client = make_app(SIGNUP_LIMIT_PER_IP="1 per minute", SIGNUP_LIMIT_PER_ADDRESS=LOOSE).test_client()

    assert sign_up_json(client, "a@example.com", ip="198.51.100.1").status_code == 202
    assert sign_up_json(client, "b@example.com", ip="198.51.100.2").status_code == 202
    assert sign_up_json(client, "c@example.com", ip="198.51.100.1").status_code == 429


def test_other_pages_are_not_limited(make_app, session):
    client = make_app(SIGNUP_LIMIT_PER_IP="1 per minute").test_client()

    assert [client.get("/newsletter").status_code for _ in range(5)] == [200] * 5


def test_flask_limiters_default_limits_still_apply_when_configured(make_app):
    # Without them its per-request hook is dropped (newsletter.limits.init_app).
    client = make_app(RATELIMIT_DEFAULT="2 per minute").test_client()

    assert [client.get("/healthz").status_code for _ in range(3)] == [200, 200, 429]


# ---------------------------------------------------------------- per address

def test_per_address_limit_counts_one_address_whatever_its_ip_or_case(make_app, session):
    client = make_app(SIGNUP_LIMIT_PER_IP=LOOSE, SIGNUP_LIMIT_PER_ADDRESS="2 per hour").test_client()

    answers = [sign_up_json(client, "reader@example.com", ip="198.51.100.1"),
               sign_up_json(client, "READER@example.com", ip="198.51.100.2"),
               sign_up_json(client, "Reader@Example.COM", ip="198.51.100.3")]

    assert [a.status_code for a in answers] == [202, 202, 429]
    assert_retry_after(answers[2])
    assert sign_up_json(client, "someone-else@example.com", ip="198.51.100.4").status_code == 202


def test_per_address_limit_is_shared_by_form_and_api(make_app):
    client = make_app(SIGNUP_LIMIT_PER_IP=LOOSE, SIGNUP_LIMIT_PER_ADDRESS="1 per hour").test_client()

    assert sign_up_json(client, "reader@example.com").status_code == 202
    assert post_signup(client, "reader@example.com").status_code == 429


def test_invalid_addresses_skip_the_per_address_limit(make_app):
    client = make_app(SIGNUP_LIMIT_PER_IP=LOOSE, SIGNUP_LIMIT_PER_ADDRESS="1 per hour").test_client()

    assert [sign_up_json(client, "no good").status_code for _ in range(3)] == [422] * 3


def test_limits_can_be_switched_off(make_app, broker):
    client = make_app(RATELIMIT_ENABLED=False, SIGNUP_LIMIT_PER_IP="1 per hour",
                      SIGNUP_LIMIT_PER_ADDRESS="1 per hour").test_client()

    assert [sign_up_json(client, "reader@example.com").status_code for _ in range(4)] == [202] * 4
    assert len(published(broker)) == 4


# ---------------------------------------------------------------- storage

def test_counters_live_in_the_apps_redis(make_app, redis_url):
    app = make_app()
    sign_up_json(app.test_client(), "reader@example.com")

    r = redis_client(redis_url)
    try:
        assert any(b"signup-ip" in key for key in r.keys("LIMITS:*"))
        assert any(b"signup-address" in key for key in r.keys("LIMITS:*"))
    finally:
        r.close()


@pytest.mark.parametrize("config, uri", [
    ({"REDIS_URL": "redis://127.0.0.1:6379/3"}, "redis://127.0.0.1:6379/3"),
    ({"REDIS_URL": "unix:///run/redis.sock"}, "redis+unix:///run/redis.sock"),
    ({"REDIS_URL": "redis+socket:///run/redis.sock"}, "redis+unix:///run/redis.sock"),
    ({"REDIS_URL": None}, "memory://"),
    ({"REDIS_URL": "redis://x", "RATELIMIT_STORAGE_URI": "memory://"}, "memory://"),
])
def test_storage_uri(config, uri):
    assert limits.storage_uri(config) == uri


def test_counters_kept_elsewhere_still_limit_and_queue(make_app, broker):
    client = make_app(RATELIMIT_STORAGE_URI="memory://", SIGNUP_LIMIT_PER_IP="1 per minute",
                      SIGNUP_LIMIT_PER_ADDRESS=LOOSE).test_client()

    statuses = [sign_up_json(client, f"r{i}@example.com").status_code for i in range(2)]

    assert statuses == [202, 429]
    assert [args[1] for _, args in published(broker)] == ["r0@example.com"]
    assert broker.keys("LIMITS:*") == []


def test_redis_down_does_not_break_sign_ups(make_app, broker):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = make_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{port}/0",
                      SIGNUP_LIMIT_PER_IP="2 per minute", SIGNUP_LIMIT_PER_ADDRESS=LOOSE).test_client()

    statuses = [sign_up_json(client, f"r{i}@example.com").status_code for i in range(3)]

    # Counted in memory meanwhile: sign-ups go on, and the limits still hold.
    assert statuses == [202, 202, 429]
    assert [args[1] for _, args in published(broker)] == ["r0@example.com", "r1@example.com"]


# ---------------------------------------------------------------- ProxyFix

def forwarded(client, email, forwarded_for):
    return post_json(client, {"email": email, "consent": True},
                     headers={"X-Forwarded-For": forwarded_for})


def test_forwarded_for_is_ignored_without_proxy_fix(make_app, session, run_queued):
    client = make_app(SIGNUP_LIMIT_PER_IP="1 per minute", SIGNUP_LIMIT_PER_ADDRESS=LOOSE).test_client()

    assert forwarded(client, "a@example.com", "198.51.100.7").status_code == 202
    # a client cannot pick a fresh IP for each request
    assert forwarded(client, "b@example.com", "198.51.100.8").status_code == 429
    run_queued()
    assert session.scalars(select(ConsentRecord.ip)).all() == ["127.0.0.1"]


@pytest.mark.parametrize("setting", [1, {"x_for": 1, "x_proto": 1}])
def test_proxy_fix_trusts_the_configured_proxies(make_app, session, run_queued, setting):
    client = make_app(PROXY_FIX=setting, SIGNUP_LIMIT_PER_IP="1 per minute",
                      SIGNUP_LIMIT_PER_ADDRESS=LOOSE).test_client()

    assert forwarded(client, "a@example.com", "198.51.100.7").status_code == 202
    assert forwarded(client, "b@example.com", "198.51.100.8").status_code == 202
    assert forwarded(client, "c@example.com", "203.0.113.1, 198.51.100.8").status_code == 429
    run_queued()
    assert session.scalars(select(ConsentRecord.ip).order_by(ConsentRecord.id)).all() == \
        ["198.51.100.7", "198.51.100.8"]


def test_proxy_fix_from_the_environment(app_config, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_PROXY_FIX", '{"x_for": 2}')
    app = create_app(app_config)
    try:
        assert app.config["PROXY_FIX"] == {"x_for": 2}
        assert app.wsgi_app.x_for == 2
    finally:
        db.engine(app).dispose()
