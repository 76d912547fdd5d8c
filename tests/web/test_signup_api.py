"""POST /api/v1/signups: statuses and bodies, and CORS for the configured origins only."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from newsletter import create_app, db
from newsletter.models import ConsentRecord, Subscriber
from tests.web.signups import (close_connections, count, post_json, published,  # noqa: F401
                               run_queued, signup_message)

ACCEPTED = {"status": "pending_confirmation"}
PARTNER = "https://partner.example"


def invalid(field, message) -> dict:
    return {"error": {"code": "invalid", "field": field, "message": message}}


def test_signup_is_accepted_and_recorded(client, session, broker, run_queued):
    response = post_json(client, {"email": "Reader@Example.com", "consent": True,
                                  "article": "syria-talks", "page": "https://partner.example/x"},
                         headers={"User-Agent": "Partner/2"})

    assert response.status_code == 202
    assert response.mimetype == "application/json"
    assert response.get_json() == ACCEPTED
    request_id, email, context, _text, _at = signup_message(broker)
    assert email == "Reader@example.com" and context["source"] == "api"
    assert count(session) == 0  # the worker stores it

    assert run_queued() == ["subscribers.signup"]
    subscriber = session.scalars(select(Subscriber)).one()
    assert (subscriber.email, subscriber.state, subscriber.source) == ("Reader@example.com", "pending", "api")
    record = session.scalars(select(ConsentRecord)).one()
    assert (record.action, record.source, record.article, record.page, record.user_agent) == \
        ("signup", "api", "syria-talks", "https://partner.example/x", "Partner/2")
    assert record.request_id == request_id


def test_page_falls_back_to_the_referer(client, session, run_queued):
    post_json(client, {"email": "reader@example.com", "consent": True},
              headers={"Referer": "https://partner.example/story"})
    run_queued()

    assert session.scalars(select(ConsentRecord.page)).one() == "https://partner.example/story"


def test_needs_no_csrf_token_even_with_csrf_on(app, client, session, run_queued):
    assert app.config["WTF_CSRF_ENABLED"] is not False

    assert post_json(client, {"email": "用户@例子.广告", "consent": True}).status_code == 202
    run_queued()
    assert session.scalars(select(Subscriber.email)).one() == "用户@例子.广告"


@pytest.mark.parametrize("body, field, message", [
    ({"email": "reader@example.com"}, "consent", "Tick the box to agree to the newsletter terms."),
    ({"email": "reader@example.com", "consent": False}, "consent", "Tick the box to agree to the newsletter terms."),
    ({"email": "reader@example.com", "consent": "true"}, "consent", "Tick the box to agree to the newsletter terms."),
    ({"email": "reader@example.com", "consent": 1}, "consent", "Tick the box to agree to the newsletter terms."),
    ({"consent": True}, "email", "Enter your email address."),
    ({"email": "", "consent": True}, "email", "Enter your email address."),
    ({"email": "nope", "consent": True}, "email", "Enter a valid email address, like name@example.com."),
    ({"email": 42, "consent": True}, "email", "The email address must be a string."),
    ({"email": ["a@example.com"], "consent": True}, "email", "The email address must be a string."),
    ({"email": "a@example.com\r\nBcc: b@example.com", "consent": True}, "email",
     "Enter an email address on a single line."),
    ({"email": "a" * 300 + "@example.com", "consent": True}, "email",
     "An email address can be at most 254 characters long."),
    (["reader@example.com", True], None, "Send a JSON object with email and consent."),
    ("reader@example.com", None, "Send a JSON object with email and consent."),
    (None, None, "Send a JSON object with email and consent."),
])
def test_invalid_sign_ups_get_422_naming_the_field(client, session, run_queued, body, field, message):
    response = client.post("/api/v1/signups", data=json.dumps(body), content_type="application/json")
    assert run_queued() == []

    assert response.status_code == 422
    assert response.get_json() == invalid(field, message)
    assert count(session) == 0


@pytest.mark.parametrize("raw", [b"", b"{", b"{'email': 1}", b"\xff\xfe", b"[" * 50_00 + b"]" * 50_00])
def test_malformed_json_gets_422(client, session, run_queued, raw):
    response = client.post("/api/v1/signups", data=raw, content_type="application/json")
    assert run_queued() == []

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid" and error["field"] is None
    assert error["message"].startswith("The body is not valid JSON")
    assert count(session) == 0


def test_deeply_nested_json_is_no_server_error(app, client):
    app.config["SIGNUP_MAX_BYTES"] = 1_000_000
    raw = b"[" * 200_000 + b"]" * 200_000

    response = client.post("/api/v1/signups", data=raw, content_type="application/json")

    assert response.status_code == 422


@pytest.mark.parametrize("kwargs", [
    {"data": {"email": "reader@example.com", "consent": "true"}},
    {"data": '{"email": "reader@example.com", "consent": true}', "content_type": "text/plain"},
    {},
])
def test_non_json_gets_415_as_json(client, session, run_queued, kwargs):
    response = client.post("/api/v1/signups", **kwargs)
    assert run_queued() == []

    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"
    assert count(session) == 0


def test_json_with_a_charset_is_json(client):
    response = client.post("/api/v1/signups", data='{"email": "r@example.com", "consent": true}',
                           content_type="application/json; charset=utf-8")

    assert response.status_code == 202


def test_oversized_body_gets_413_as_json(client, session, run_queued):
    body = {"email": "reader@example.com", "consent": True, "page": "x" * 20_000}

    response = post_json(client, body)
    assert run_queued() == []

    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"
    assert count(session) == 0


def test_long_page_and_article_are_cut_to_their_columns(client, session, run_queued):
    body = {"email": "reader@example.com", "consent": True, "page": "p" * 5000, "article": "a" * 500}

    assert post_json(client, body).status_code == 202
    run_queued()
    record = session.scalars(select(ConsentRecord)).one()
    assert (len(record.page), len(record.article)) == (1000, 120)


def test_wrong_types_of_page_and_article_are_ignored(client, session, run_queued):
    body = {"email": "reader@example.com", "consent": True, "page": ["x"], "article": {"a": 1}}

    assert post_json(client, body).status_code == 202
    run_queued()
    record = session.scalars(select(ConsentRecord)).one()
    assert (record.page, record.article) == ("", "")


def test_get_is_not_allowed(client):
    response = client.get("/api/v1/signups")

    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


# ---------------------------------------------------------------- CORS

@pytest.fixture
def cors_app(app_config):
    app = create_app(app_config | {"CORS_ORIGINS": [PARTNER, "https://other-partner.example"]})
    yield app
    db.engine(app).dispose()


def preflight(client, origin):
    return client.options("/api/v1/signups", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})


def test_cors_answers_an_allowed_origin(cors_app, session):
    response = post_json(cors_app.test_client(), {"email": "r@example.com", "consent": True},
                         headers={"Origin": PARTNER})

    assert response.status_code == 202
    assert response.headers["Access-Control-Allow-Origin"] == PARTNER
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_cors_ignores_other_origins(cors_app):
    response = post_json(cors_app.test_client(), {"email": "r@example.com", "consent": True},
                         headers={"Origin": "https://evil.example"})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_preflight_from_an_allowed_origin(cors_app):
    response = preflight(cors_app.test_client(), PARTNER)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == PARTNER
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"].lower() == "content-type"
    assert int(response.headers["Access-Control-Max-Age"]) > 0


def test_cors_preflight_from_another_origin_gets_no_grant(cors_app):
    response = preflight(cors_app.test_client(), "https://evil.example")

    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_is_not_a_sign_up(cors_app, session, broker):
    preflight(cors_app.test_client(), PARTNER)
    assert published(broker) == []

    assert count(session) == 0


def test_cors_covers_the_public_api_only(cors_app, session):
    client = cors_app.test_client()
    article = client.get("/api/v1/articles/none", headers={"Origin": PARTNER})
    form = client.post("/newsletter/signup", headers={"Origin": PARTNER})

    assert "Access-Control-Allow-Origin" not in article.headers
    assert "Access-Control-Allow-Origin" not in form.headers


def test_no_cors_unless_origins_are_configured(client):
    assert client.application.config["CORS_ORIGINS"] == []

    response = preflight(client, PARTNER)
    post = post_json(client, {"email": "r@example.com", "consent": True}, headers={"Origin": PARTNER})

    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in post.headers


def test_cors_origins_come_from_the_environment(app_config, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_CORS_ORIGINS", f'["{PARTNER}"]')
    app = create_app(app_config)
    try:
        assert app.config["CORS_ORIGINS"] == [PARTNER]
        assert preflight(app.test_client(), PARTNER).headers["Access-Control-Allow-Origin"] == PARTNER
    finally:
        db.engine(app).dispose()
