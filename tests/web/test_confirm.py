"""Double opt-in: GET /newsletter/confirm/<token> shows a button, only POST confirms."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from newsletter.models import ConfirmationToken, ConsentRecord
from tests.web.markup import parse
from tests.web.signups import (close_connections, make_confirmation_token,  # noqa: F401
                               make_subscriber, published, token_in)


@pytest.fixture
def pending(session):
    subscriber = make_subscriber(session, "pending@example.com", "pending")
    raw = make_confirmation_token(session, subscriber)
    session.commit()
    return subscriber, raw


def confirm(client, raw):
    """Open the link, then press the page's button, as a reader does."""
    page = client.get(f"/newsletter/confirm/{raw}")
    assert page.status_code == 200
    return client.post(f"/newsletter/confirm/{raw}", data={"csrf_token": token_in(page.data)})


def test_get_shows_a_button_and_confirms_nothing(client, session, pending, broker):
    subscriber, raw = pending

    response = client.get(f"/newsletter/confirm/{raw}")

    assert response.status_code == 200
    form = parse(response.data).find("form")
    assert form.attrs["method"] == "post" and form.attrs["action"] == f"/newsletter/confirm/{raw}"
    assert form.find("input", name="csrf_token").attrs["value"]
    assert form.find("button").text() == "Confirm my subscription"
    session.expire_all()
    assert subscriber.state == "pending"
    assert session.scalars(select(ConfirmationToken.used_at)).one() is None
    assert published(broker) == []
    assert response.headers["Cache-Control"] == "no-store"
    assert parse(response.data).find("meta", name="robots").attrs["content"] == "noindex"


def test_head_confirms_nothing_either(client, session, pending):
    subscriber, raw = pending

    assert client.head(f"/newsletter/confirm/{raw}").status_code == 200
    session.expire_all()
    assert subscriber.state == "pending"


def test_post_confirms_and_says_youre_in(client, session, pending, broker):
    subscriber, raw = pending

    response = confirm(client, raw)

    assert response.status_code == 200
    page = parse(response.data)
    assert page.find("h1").text() == "You’re in"
    manage = [a.attrs["href"] for a in page.find_all("a") if "/newsletter/manage/" in a.attrs["href"]]
    assert len(manage) == 1 and client.get(manage[0]).status_code == 200
    session.expire_all()
    assert subscriber.state == "confirmed" and subscriber.confirmed_at is not None
    record = session.scalars(select(ConsentRecord)).one()
    assert (record.action, record.source, record.ip) == ("confirm", "mail", "127.0.0.1")
    assert published(broker) == [("subscribers.welcome_mail", [subscriber.id])]


def test_post_without_csrf_token_confirms_nothing(client, session, pending):
    subscriber, raw = pending
    client.get(f"/newsletter/confirm/{raw}")

    response = client.post(f"/newsletter/confirm/{raw}")

    assert response.status_code == 400
    session.expire_all()
    assert subscriber.state == "pending"


def test_a_used_token_is_refused_with_a_way_back(client, session, pending):
    subscriber, raw = pending
    assert confirm(client, raw).status_code == 200

    again = client.post(f"/newsletter/confirm/{raw}", data={"csrf_token": token_in(client.get("/newsletter").data)})
    shown = client.get(f"/newsletter/confirm/{raw}")

    for response in (again, shown):
        assert response.status_code == 410
        page = parse(response.data)
        assert page.find("h1").text() == "This link was already used"
        assert page.find("a", class_="button").attrs["href"] == "/newsletter"
    assert session.scalars(select(ConsentRecord.action)).all() == ["confirm"]


def test_an_expired_token_is_refused(client, session):
    subscriber = make_subscriber(session, "late@example.com", "pending")
    raw = make_confirmation_token(session, subscriber, expires_in=timedelta(seconds=-1))
    session.commit()
    token = token_in(client.get("/newsletter").data)

    shown = client.get(f"/newsletter/confirm/{raw}")
    posted = client.post(f"/newsletter/confirm/{raw}", data={"csrf_token": token})

    for response in (shown, posted):
        assert response.status_code == 410
        assert parse(response.data).find("h1").text() == "This link has expired"
        assert "Sign up again" in response.text
    session.expire_all()
    assert subscriber.state == "pending"


@pytest.mark.parametrize("raw", [
    "A" * 43,                      # well-formed, unknown
    "forged-token-forged-token-forged-token-1234",
    "short",                       # malformed
    "x" * 500,
    "%F0%9F%92%A5",
    "..%2F..%2Fetc%2Fpasswd",
])
def test_unknown_or_forged_tokens_are_refused(client, session, pending, raw):
    subscriber, _ = pending
    token = token_in(client.get("/newsletter").data)

    shown = client.get(f"/newsletter/confirm/{raw}")
    posted = client.post(f"/newsletter/confirm/{raw}", data={"csrf_token": token})

    for response in (shown, posted):
        assert response.status_code in (400, 404)
        if response.status_code == 400:
            assert parse(response.data).find("h1").text() == "We don’t recognise this link"
    session.expire_all()
    assert subscriber.state == "pending"


def test_a_token_of_one_reader_confirms_only_that_reader(client, session, pending):
    subscriber, raw = pending
    other = make_subscriber(session, "other@example.com", "pending")
    make_confirmation_token(session, other)
    session.commit()

    confirm(client, raw)

    session.expire_all()
    assert (subscriber.state, other.state) == ("confirmed", "pending")
