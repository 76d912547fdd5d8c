"""Members sign in by a link in a mail (single use, 15 minutes); the account page."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from newsletter import db, member_signin, memberships
from newsletter.models import Membership, SignInToken
from tests.web.signups import csrf_token, run_queued  # noqa: F401  (fixture)

NOW = datetime.now(timezone.utc)


@pytest.fixture
def reader_id(app):
    with app.app_context():
        session = db.session()
        reader = memberships.new_reader(session, "member@example.com")
        session.add(Membership(reader_id=reader.id, stripe_subscription_id="sub_1", status="active",
                               current_period_end=NOW + timedelta(days=20)))
        session.commit()
        return reader.id


def request_link(client, email: str):
    return client.post("/account/sign-in", data={"email": email, "csrf_token": csrf_token(client, "/account/sign-in")})


def link_of(mail) -> str:
    text = mail.get_body(("plain",)).get_content()
    return re.search(r"http://newsletter\.test(/account/sign-in/\S+)", text).group(1)


def sign_in(client, smtp_server, run_queued):
    request_link(client, "member@example.com")
    run_queued()
    path = link_of(smtp_server.wait_for("member@example.com")[-1])
    token = csrf_token(client, path)
    return path, client.post(path, data={"csrf_token": token})


def test_the_whole_sign_in(client, reader_id, smtp_server, run_queued):
    assert client.get("/account").status_code == 302
    path, response = sign_in(client, smtp_server, run_queued)
    assert response.status_code == 303 and response.headers["Location"].endswith("/account")
    cookie = response.headers["Set-Cookie"]
    assert "member=" in cookie and "HttpOnly" in cookie and "Secure" not in cookie  # http BASE_URL
    page = client.get("/account").get_data(as_text=True)
    assert "member@example.com" in page and "Active" in page and "Manage membership" not in page


def test_a_link_works_once(client, reader_id, smtp_server, run_queued):
    path, _ = sign_in(client, smtp_server, run_queued)
    client.post("/account/sign-out", data={"csrf_token": csrf_token(client, "/account")})
    assert client.get(path).status_code == 410
    assert client.post(path, data={"csrf_token": csrf_token(client, "/account/sign-in")}).status_code == 410


def test_get_on_the_link_signs_nobody_in(client, reader_id, smtp_server, run_queued):
    request_link(client, "member@example.com")
    run_queued()
    path = link_of(smtp_server.wait_for("member@example.com")[-1])
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 200  # a scanner's visit did not spend it
    assert client.get("/account").status_code == 302


def test_unknown_addresses_get_the_same_page_and_no_mail(client, reader_id, smtp_server, run_queued, broker):
    known = request_link(client, "member@example.com")
    unknown = request_link(client, "stranger@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.data == unknown.data
    assert run_queued() == ["members.sign_in_mail"]
    assert smtp_server.to("stranger@example.com") == []


def test_expired_and_forged_tokens_are_refused(app, client, reader_id):
    with app.app_context():
        session = db.session()
        old = member_signin.issue_token(session, reader_id, NOW - timedelta(minutes=16))
        session.commit()
    for token in (old, "x" * 43, "short", "a" * 99):
        assert client.get(f"/account/sign-in/{token}").status_code == 410


def test_only_the_hash_is_stored(app, reader_id):
    with app.app_context():
        session = db.session()
        raw = member_signin.issue_token(session, reader_id, NOW)
        stored = session.scalars(select(SignInToken.token_hash)).one()
    assert raw not in stored and len(stored) == 64


def test_two_racing_redemptions_sign_in_once(app, reader_id):
    with app.app_context():
        session = db.session()
        raw = member_signin.issue_token(session, reader_id, NOW)
        session.commit()
        assert member_signin.redeem(session, raw, NOW) == reader_id
        session.commit()
        with pytest.raises(member_signin.InvalidToken):
            member_signin.redeem(session, raw, NOW)


def test_a_forged_member_cookie_is_ignored(client, reader_id):
    client.set_cookie("member", f"{reader_id}.forged.signature")
    assert client.get("/account").status_code == 302


def test_sign_in_requests_are_rate_limited(client, reader_id):
    answers = [request_link(client, "member@example.com").status_code for _ in range(6)]
    assert answers[:5] == [200] * 5 and answers[5] == 429
