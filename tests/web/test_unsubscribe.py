"""/newsletter/unsubscribe/<token>: the page (unsubscribe, pause, resubscribe) and RFC 8058 one-click."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from newsletter.models import ConsentRecord, utcnow
from tests.web.markup import parse
from tests.web.signups import close_connections, link_token, make_subscriber  # noqa: F401

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def reader(session):
    subscriber = make_subscriber(session, "reader@example.com", "confirmed")
    session.commit()
    return subscriber


@pytest.fixture
def url(reader):
    return f"/newsletter/unsubscribe/{link_token(reader, 'unsubscribe')}"


def buttons(html: bytes) -> dict[str, str]:
    """Text of each submit button -> the action it sends."""
    page = parse(html)
    found = {}
    for form in page.find_all("form"):
        hidden = {i.attrs["name"]: i.attrs["value"] for i in form.find_all("input", type="hidden")}
        for button in form.find_all("button"):
            found[button.text()] = hidden.get("action") or button.attrs.get("value")
    return found


# ---------------------------------------------------------------- the page

def test_page_offers_unsubscribe_and_pauses_and_changes_nothing(client, session, reader, url):
    response = client.get(url)

    assert response.status_code == 200
    assert buttons(response.data) == {"Unsubscribe": "unsubscribe", "Pause for 7 days": "pause",
                                      "Pause for 30 days": "pause", "Pause for 90 days": "pause"}
    assert "reader@example.com" in response.text
    assert all(f.attrs["action"] == url for f in parse(response.data).find_all("form"))
    assert response.headers["Cache-Control"] == "no-store"
    session.expire_all()
    assert reader.state == "confirmed"
    assert client.head(url).status_code == 200 and reader.state == "confirmed"


def test_page_buttons_unsubscribe_then_resubscribe(client, session, reader, url):
    left = client.post(url, data={"action": "unsubscribe"})

    assert left.status_code == 303 and left.headers["Location"] == f"{url}?done=unsubscribe"
    session.expire_all()
    assert reader.state == "unsubscribed"
    page = client.get(left.headers["Location"])
    assert "You are unsubscribed" in parse(page.data).find("p", class_="notice").text()
    assert buttons(page.data) == {"Resubscribe": "resubscribe"}

    back = client.post(url, data={"action": "resubscribe"})

    assert back.status_code == 303
    session.expire_all()
    assert reader.state == "confirmed"
    actions = session.scalars(select(ConsentRecord.action).order_by(ConsentRecord.id)).all()
    assert actions == ["unsubscribe", "resubscribe"]


@pytest.mark.parametrize("days", [7, 30, 90])
def test_pause_buttons(client, session, reader, url, days):
    response = client.post(url, data={"action": "pause", "days": str(days)})

    assert response.status_code == 303
    session.expire_all()
    assert reader.state == "confirmed"
    assert abs(reader.paused_until - (utcnow() + timedelta(days=days))) < timedelta(minutes=1)
    page = client.get(url)
    assert "paused until" in page.text
    assert buttons(page.data)["Resume now"] == "resume"


def test_resume_ends_a_pause(client, session, reader, url):
    client.post(url, data={"action": "pause", "days": "30"})

    client.post(url, data={"action": "resume"})

    session.expire_all()
    assert reader.paused_until is None


@pytest.mark.parametrize("data", [
    {"action": "explode"}, {}, {"action": "pause"}, {"action": "pause", "days": "0"},
    {"action": "pause", "days": "366"}, {"action": "pause", "days": "soon"},
    {"List-Unsubscribe": "Two-Click"},
])
def test_bad_buttons_get_422_and_change_nothing(client, session, reader, url, data):
    response = client.post(url, data=data)

    assert response.status_code == 422
    assert parse(response.data).find_all("p", class_="form-error")
    session.expire_all()
    assert (reader.state, reader.paused_until) == ("confirmed", None)


# ---------------------------------------------------------------- RFC 8058 one-click

def test_one_click_unsubscribes_at_once_without_cookies_or_csrf(app, session, reader, url):
    assert app.config["WTF_CSRF_ENABLED"] is not False
    provider = app.test_client(use_cookies=False)

    response = provider.post(url, data=ONE_CLICK,
                             content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert len(response.data) < 100
    assert "Set-Cookie" not in response.headers
    session.expire_all()
    assert reader.state == "unsubscribed" and reader.unsubscribed_at is not None
    record = session.scalars(select(ConsentRecord)).one()
    assert (record.action, record.source) == ("unsubscribe", "mail")


def test_one_click_as_multipart_form_data(app, session, reader, url):
    response = app.test_client(use_cookies=False).post(url, data={"List-Unsubscribe": "One-Click"},
                                                       content_type="multipart/form-data")

    assert response.status_code == 200
    session.expire_all()
    assert reader.state == "unsubscribed"


def test_one_click_twice_is_fine(client, session, reader, url):
    first = client.post(url, data=ONE_CLICK, content_type="application/x-www-form-urlencoded")
    second = client.post(url, data=ONE_CLICK, content_type="application/x-www-form-urlencoded")

    assert (first.status_code, second.status_code) == (200, 200)
    assert session.scalars(select(ConsentRecord.action)).all() == ["unsubscribe"]


# ---------------------------------------------------------------- bad links

@pytest.mark.parametrize("token", ["nonsense", "1.00000000000000000000000000000000", "999.abc"])
def test_bad_links_get_a_404_page(client, session, reader, token):
    for response in (client.get(f"/newsletter/unsubscribe/{token}"),
                     client.post(f"/newsletter/unsubscribe/{token}", data=ONE_CLICK,
                                 content_type="application/x-www-form-urlencoded")):
        assert response.status_code == 404
        assert response.mimetype == "text/html"
    session.expire_all()
    assert reader.state == "confirmed"


def test_a_manage_link_is_no_unsubscribe_link(client, session, reader):
    token = link_token(reader, "manage")

    assert client.get(f"/newsletter/unsubscribe/{token}").status_code == 404


def test_a_tampered_signature_is_refused(client, session, reader):
    subscriber_id, mac = link_token(reader, "unsubscribe").split(".")
    other = make_subscriber(session, "other@example.com")
    session.commit()

    assert client.get(f"/newsletter/unsubscribe/{other.id}.{mac}").status_code == 404
    assert client.get(f"/newsletter/unsubscribe/{subscriber_id}.{mac[::-1]}").status_code == 404
