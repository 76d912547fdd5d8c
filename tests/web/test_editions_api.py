"""The editions API under /api/v1/editions: bearer tokens, 201/202/404/409/422 and their
bodies, and a send triggered twice that plans once."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from newsletter import db, editions
from newsletter.models import Edition
from tests.factories import make_article
from tests.support.console import bearer
from tests.support.delivery import make_subscribers, published

DAY = date(2026, 11, 25)
PROGRESS_KEYS = {"id", "state", "total", "sent", "failed", "pending"}


@pytest.fixture
def auth(app):
    return bearer(app)


@pytest.fixture
def stories(app):
    """Three stories of 25 November 2026 (UTC), and one of the day before."""
    with app.app_context():
        session = db.session()
        for n, hour in enumerate((8, 9, 10)):
            make_article(session, slug=f"day-{n}", headline=f"Day story {n}",
                         published_at=datetime(2026, 11, 25, hour, tzinfo=timezone.utc))
        make_article(session, slug="yesterday", published_at=datetime(2026, 11, 24, 12, tzinfo=timezone.utc))
        session.commit()


@pytest.fixture
def edition_id(app, stories):
    with app.app_context():
        session = db.session()
        make_subscribers(session, 2)
        edition = editions.create_edition(session, day=DAY, slugs=["day-0"], count=8, tz="UTC")
        session.commit()
        return edition.id


def error_of(response) -> dict:
    return response.json["error"]


# ---------------------------------------------------------------- tokens

ROUTES = [("POST", "/api/v1/editions"), ("GET", "/api/v1/editions/1"), ("POST", "/api/v1/editions/1/send"),
          ("POST", "/api/v1/editions/1/pause"), ("POST", "/api/v1/editions/1/resume"),
          ("POST", "/api/v1/editions/1/cancel"), ("POST", "/api/v1/editions/1/resend-failed")]


@pytest.mark.parametrize("method, path", ROUTES)
def test_every_route_needs_a_token(app, client, edition_id, method, path):
    for headers in ({}, {"Authorization": "Bearer nlop_not-a-real-token"}, {"Authorization": "Basic eDp5"}):
        response = client.open(path, method=method, json={"articles": ["day-0"]}, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert error_of(response)["code"] == "unauthorized"
    with app.app_context():
        assert db.session().scalar(select(Edition.state).where(Edition.id == edition_id)) == "draft"
        assert len(db.session().scalars(select(Edition)).all()) == 1


# ---------------------------------------------------------------- POST /api/v1/editions

def test_create_from_slugs(client, auth, stories):
    response = client.post("/api/v1/editions", json={"articles": ["day-2", "yesterday"]}, headers=auth)
    assert response.status_code == 201
    body = response.json
    assert body["articles"] == ["day-2", "yesterday"] and body["state"] == "draft"
    assert response.headers["Location"].endswith(f"/api/v1/editions/{body['id']}")
    assert body["subject"].endswith("Day story 2")


def test_create_for_a_date_takes_that_days_stories_newest_first(client, auth, stories):
    response = client.post("/api/v1/editions", json={"date": "2026-11-25"}, headers=auth)
    assert response.status_code == 201
    assert response.json["date"] == "2026-11-25"
    assert response.json["articles"] == ["day-2", "day-1", "day-0"]


def test_create_with_latest_when_the_day_has_none(client, auth, stories):
    response = client.post("/api/v1/editions", json={"date": "2026-12-01", "latest": True}, headers=auth)
    assert response.status_code == 201
    assert response.json["date"] == "2026-12-01" and response.json["articles"][0] == "day-2"


@pytest.mark.parametrize("body, code, field", [
    ({"date": "25/11/2026"}, "invalid", "date"),
    ({"date": "2026-02-30"}, "invalid", "date"),
    ({"date": 20261125}, "invalid", "date"),
    ({"articles": "day-0"}, "invalid", "articles"),
    ({"articles": ["day-0", ""]}, "invalid", "articles"),
    ({"articles": [1]}, "invalid", "articles"),
    ({"latest": "yes"}, "invalid", "latest"),
    ({"articles": ["day-0", "nope"]}, "unknown_article", "articles"),
    ({"date": "2026-12-01"}, "no_stories", "date"),
    (["day-0"], "invalid", None),
])
def test_create_refuses_what_cannot_make_an_edition(client, auth, stories, body, code, field):
    response = client.post("/api/v1/editions", json=body, headers=auth)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == code and error.get("field") == field
    assert error["message"]


def test_the_messages_name_the_problem(client, auth, stories):
    unknown = client.post("/api/v1/editions", json={"articles": ["nope"]}, headers=auth)
    assert error_of(unknown)["message"] == "No article has the slug 'nope'."
    empty = client.post("/api/v1/editions", json={"date": "2026-12-01"}, headers=auth)
    assert error_of(empty)["message"].startswith("No stories published on 2026-12-01 (UTC)")


def test_a_body_that_is_not_json_is_400(client, auth, stories):
    response = client.post("/api/v1/editions", data="{nope", headers=auth | {"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_no_body_means_today(app, client, auth):
    with app.app_context():
        make_article(db.session(), slug="now", published_at=datetime.now(timezone.utc))
        db.session().commit()
    response = client.post("/api/v1/editions", headers=auth)
    assert response.status_code == 201 and response.json["articles"] == ["now"]


# ---------------------------------------------------------------- progress and sending

def test_progress(client, auth, edition_id):
    response = client.get(f"/api/v1/editions/{edition_id}", headers=auth)
    assert response.status_code == 200
    assert PROGRESS_KEYS <= set(response.json)
    assert response.json | {"rate": 0} == {"id": edition_id, "state": "draft", "total": 0, "sent": 0,
                                           "failed": 0, "pending": 0, "skipped": 0, "rate": 0,
                                           "eta_seconds": 0}


def test_an_unknown_edition_is_404_everywhere(client, auth):
    for method, path in ROUTES[1:]:
        response = client.open(path.replace("/1", "/999"), method=method, headers=auth)
        assert response.status_code == 404, path
        assert error_of(response) == {"code": "not_found", "message": "No edition has the id 999."}


def test_send_is_202_and_a_second_call_changes_nothing(app, client, auth, edition_id, broker):
    first = client.post(f"/api/v1/editions/{edition_id}/send", headers=auth)
    assert first.status_code == 202
    assert first.json["started"] is True and first.json["state"] == "sending"
    second = client.post(f"/api/v1/editions/{edition_id}/send", headers=auth)
    assert second.status_code == 202
    assert second.json["started"] is False and second.json["state"] == "sending"
    assert [(name, args) for name, args, _ in published(broker)] == [("delivery.plan", [edition_id])]


def test_sending_a_cancelled_edition_is_409(client, auth, edition_id, broker):
    assert client.post(f"/api/v1/editions/{edition_id}/cancel", headers=auth).json["changed"] is True
    response = client.post(f"/api/v1/editions/{edition_id}/send", headers=auth)
    assert response.status_code == 409
    assert error_of(response)["code"] == "cancelled"
    assert published(broker) == []


def test_pause_resume_cancel_and_resend_failed(client, auth, edition_id):
    url = f"/api/v1/editions/{edition_id}"
    assert client.post(f"{url}/pause", headers=auth).json == client.get(url, headers=auth).json | {"changed": False}
    client.post(f"{url}/send", headers=auth)
    for action, changed, state in [("pause", True, "paused"), ("pause", False, "paused"),
                                   ("resume", True, "sending"), ("cancel", True, "cancelled"),
                                   ("cancel", False, "cancelled")]:
        response = client.post(f"{url}/{action}", headers=auth)
        assert response.status_code == 200
        assert (response.json["changed"], response.json["state"]) == (changed, state), action
    resent = client.post(f"{url}/resend-failed", headers=auth)
    assert resent.status_code == 200 and resent.json["resent"] == 0
