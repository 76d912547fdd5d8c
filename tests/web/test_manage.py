"""/newsletter/manage/<token>: the subscriber's own data, pause/resume, leave, export, erase."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from newsletter.addresses import email_hash
from newsletter.consent import ConsentContext, record_consent
from newsletter.models import ConsentRecord, Subscriber, Suppression, utcnow
from tests.web.markup import parse
from tests.web.signups import close_connections, count, link_token, make_subscriber, token_in  # noqa: F401


@pytest.fixture
def reader(session):
    subscriber = make_subscriber(session, "josé@bücher.de", "confirmed")
    ctx = ConsentContext(ip="203.0.113.9", user_agent="Browser/1", page="/articles/story",
                         article="story", source="form")
    record_consent(session, subscriber, "signup", ctx, "I agree to the Daily Edition.")
    record_consent(session, subscriber, "confirm", ctx, "I agree to the Daily Edition.")
    session.commit()
    return subscriber


@pytest.fixture
def url(reader):
    return f"/newsletter/manage/{link_token(reader, 'manage')}"


def post(client, url, data):
    """POST a form of the manage page with the page's CSRF token."""
    token = token_in(client.get(url.split("/erase")[0]).data)
    return client.post(url, data=data | {"csrf_token": token})


def test_page_shows_the_readers_own_data(client, reader, url):
    response = client.get(url)

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = parse(response.data)
    facts = dict(zip([dt.text() for dt in page.find_all("dt")], [dd.text() for dd in page.find_all("dd")]))
    assert facts["Address"] == "josé@bücher.de"
    assert facts["Status"] == "Subscribed"
    assert facts["Since"]
    history = page.find("table", class_="consent-history").find("tbody").find_all("tr")
    assert [row.find_all("td")[1].text() for row in history] == ["Signed up (form)", "Confirmed (form)"]
    assert "I agree to the Daily Edition." in history[0].text()
    assert "/articles/story (story)" in history[0].text()
    export = [a for a in page.find_all("a") if a.text() == "Download my data (JSON)"]
    assert [a.attrs["href"] for a in export] == [f"{url}/export"]
    assert page.find("form", class_="erase-form").attrs["action"] == f"{url}/erase"


def test_pause_and_resume(client, session, reader, url):
    response = post(client, url, {"action": "pause", "days": "14"})

    assert response.status_code == 303 and response.headers["Location"] == f"{url}?done=pause"
    session.expire_all()
    assert abs(reader.paused_until - (utcnow() + timedelta(days=14))) < timedelta(minutes=1)
    page = parse(client.get(response.headers["Location"]).data)
    assert "Paused until" in [dt.text() for dt in page.find_all("dt")]

    post(client, url, {"action": "resume"})

    session.expire_all()
    assert reader.paused_until is None


@pytest.mark.parametrize("days", ["0", "366", "-3", "many", ""])
def test_pause_out_of_range_is_refused(client, session, reader, url, days):
    response = post(client, url, {"action": "pause", "days": days})

    assert response.status_code == 422
    assert parse(response.data).find_all("p", class_="form-error")
    session.expire_all()
    assert reader.paused_until is None


def test_unsubscribe_and_resubscribe(client, session, reader, url):
    post(client, url, {"action": "unsubscribe"})
    session.expire_all()
    assert reader.state == "unsubscribed"
    assert "Unsubscribed" in client.get(url).text

    post(client, url, {"action": "resubscribe"})
    session.expire_all()
    assert reader.state == "confirmed"


def test_forms_need_the_csrf_token(client, session, reader, url):
    client.get(url)

    responses = [client.post(url, data={"action": "unsubscribe"}),
                 client.post(f"{url}/erase", data={"confirm": "yes"})]

    assert [r.status_code for r in responses] == [400, 400]
    session.expire_all()
    assert reader.state == "confirmed" and count(session) == 1


def test_export_is_a_json_attachment(client, reader, url):
    response = client.get(f"{url}/export")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    data = json.loads(response.data)
    assert data["email"] == "josé@bücher.de" and data["state"] == "confirmed"
    assert [r["action"] for r in data["consent_records"]] == ["signup", "confirm"]
    assert data["consent_records"][0]["ip"] == "203.0.113.9"
    assert data["consent_records"][0]["text"] == "I agree to the Daily Edition."


def test_erase_needs_the_confirmation_box(client, session, reader, url):
    response = post(client, f"{url}/erase", {})

    assert response.status_code == 422
    error = parse(response.data).find("p", id="erase-confirm-error")
    assert error.text() == "Tick the box to confirm the erasure."
    assert count(session) == 1


def test_erase_removes_the_reader_and_leaves_a_hashed_suppression(client, session, reader, url):
    digest = reader.email_hash

    response = post(client, f"{url}/erase", {"confirm": "yes"})

    assert response.status_code == 200
    assert parse(response.data).find("h1").text() == "Goodbye"
    assert count(session) == 0
    assert digest == email_hash("josé@bücher.de")
    assert session.scalars(select(Suppression.email_hash)).all() == [digest]
    records = session.scalars(select(ConsentRecord)).all()
    assert {(r.subscriber_id, r.ip, r.user_agent, r.email_hash) for r in records} == {(None, "", "", digest)}
    assert client.get(url).status_code == 404
    assert client.get(f"{url}/export").status_code == 404


@pytest.mark.parametrize("suffix", ["", "/export"])
def test_bad_links_get_404(client, session, reader, suffix):
    assert client.get(f"/newsletter/manage/1.{'0' * 32}{suffix}").status_code == 404
    assert client.get(f"/newsletter/manage/{link_token(reader, 'unsubscribe')}{suffix}").status_code == 404


def test_a_bad_link_cannot_erase(client, session, reader):
    token = token_in(client.get("/newsletter").data)

    response = client.post(f"/newsletter/manage/{link_token(reader, 'unsubscribe')}/erase",
                           data={"confirm": "yes", "csrf_token": token})

    assert response.status_code == 404
    assert session.scalars(select(Subscriber.email)).all() == ["josé@bücher.de"]
