"""The operator routes of /api/v1: bearer-token auth, bounce and complaint reports, counts."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from newsletter import db, operators
from newsletter.addresses import email_hash
from newsletter.models import Subscriber, Suppression

REPORTS = "/api/v1/suppressions/reports"
COUNTS = "/api/v1/subscribers/counts"


@pytest.fixture
def operator_token(app) -> str:
    with app.app_context():
        session = db.session()
        operator = operators.create_operator(session, "desk@example.org", "a long enough password")
        token = operators.issue_token(session, operator)
        session.commit()
    return token


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def add_subscribers(app, *emails):
    with app.app_context():
        session = db.session()
        for email in emails:
            session.add(Subscriber(email=email, email_hash=email_hash(email), state="confirmed",
                                   token_key="k" * 32))
        session.commit()


# ---------------------------------------------------------------- authentication

@pytest.mark.parametrize("method, path", [("get", COUNTS), ("post", REPORTS)])
def test_no_token_is_401_with_a_bearer_challenge(client, method, path):
    response = getattr(client, method)(path, json={"reports": []})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "invalid_token" not in response.headers["WWW-Authenticate"]
    assert response.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("header", [
    "Bearer nlop_not-a-real-token", "Bearer ", "Basic ZGVzazpwYXNzd29yZA==", "nlop_x",
])
def test_a_bad_token_is_401(client, operator_token, header):
    response = client.get(COUNTS, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_token_says_invalid_token(client, operator_token):
    response = client.get(COUNTS, headers=bearer(operator_token + "x"))
    assert response.status_code == 401
    assert "error=invalid_token" in response.headers["WWW-Authenticate"].replace('"', "")


def test_a_revoked_token_is_401(app, client, operator_token):
    assert client.get(COUNTS, headers=bearer(operator_token)).status_code == 200
    with app.app_context():
        operators.revoke_token(db.session(), operator_token)
        db.session().commit()
    assert client.get(COUNTS, headers=bearer(operator_token)).status_code == 401


def test_a_good_token_is_200_and_its_use_noted(app, client, operator_token):
    response = client.get(COUNTS, headers={"Authorization": f"bearer  {operator_token} "})
    assert response.status_code == 200
    with app.app_context():
        from newsletter.models import OperatorToken
        assert db.session().scalar(select(OperatorToken.last_used_at)) is not None


# ---------------------------------------------------------------- counts

def test_counts_by_state_and_suppressed(app, client, operator_token):
    add_subscribers(app, "a@example.org", "b@example.org")
    client.post(REPORTS, headers=bearer(operator_token),
                json={"reports": [{"email": "a@example.org", "type": "hard"}]})
    response = client.get(COUNTS, headers=bearer(operator_token))
    assert response.get_json() == {"pending": 0, "confirmed": 2, "unsubscribed": 0,
                                   "suppressed": 1}


# ---------------------------------------------------------------- reports

def test_reports_are_applied_and_bad_items_named(app, client, operator_token):
    add_subscribers(app, "angry@example.org")
    reports = [
        {"email": "angry@example.org", "type": "complaint", "at": "2025-11-01T10:00:00Z"},
        {"email": "gone@example.org", "type": "bounce", "bounce_type": "Permanent"},
        {"email": "not an address", "type": "hard"},
        {"email": "soft@example.org", "type": "soft", "at": "2025-11-01T10:00:00Z"},
        {"email": "soft@example.org", "type": "soft", "at": "2025-11-01T10:00:00Z"},
        {"email": "x@example.org", "type": "weird"},
        "not an object",
    ]
    response = client.post(REPORTS, headers=bearer(operator_token), json={"reports": reports})
    assert response.status_code == 200
    body = response.get_json()
    assert {k: body[k] for k in ("processed", "duplicates", "suppressed", "unsubscribed")} == {
        "processed": 4, "duplicates": 1, "suppressed": 2, "unsubscribed": 1}
    assert [item["index"] for item in body["invalid"]] == [2, 5, 6]
    assert "unknown type 'weird'" in body["invalid"][1]["message"]
    with app.app_context():
        session = db.session()
        assert session.scalar(select(Subscriber.state)) == "unsubscribed"
        assert sorted(session.scalars(select(Suppression.reason))) == ["complaint", "hard_bounce"]


@pytest.mark.parametrize("body", [None, [], {"reports": "a@example.org"}, {"report": []}])
def test_a_body_without_a_report_list_is_400(client, operator_token, body):
    response = client.post(REPORTS, headers=bearer(operator_token), json=body)
    assert response.status_code == 400
    assert '{"reports"' in response.get_json()["error"]["message"]


def test_too_many_reports_in_one_request_is_413(client, operator_token):
    from newsletter.web.operator_api import MAX_REPORTS

    reports = [{"email": "a@example.org", "type": "soft"}] * (MAX_REPORTS + 1)
    response = client.post(REPORTS, headers=bearer(operator_token), json={"reports": reports})
    assert response.status_code == 413


def test_reports_need_no_csrf_token_but_a_bearer_token(client, operator_token):
    # The app protects forms with CSRF; the bearer token is this route's credential.
    response = client.post(REPORTS, headers=bearer(operator_token), json={"reports": []})
    assert response.status_code == 200
    assert response.get_json() == {"processed": 0, "duplicates": 0, "suppressed": 0,
                                   "unsubscribed": 0, "invalid": []}
