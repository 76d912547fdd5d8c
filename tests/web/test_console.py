"""The operator console: sign-in everywhere under /operator, CSRF, the dashboard, and the
edition pages whose Send button starts the send (the same start_send as the CLI and API)."""
from __future__ import annotations

import re
import time
from datetime import date

import pytest
from sqlalchemy import select, update

from newsletter import db, editions
from newsletter.models import Edition, Operator
from tests.factories import make_article
from tests.support.console import PASSWORD, csrf_token, location_path, make_operator, sign_in
from tests.support.delivery import make_subscribers, published
from tests.web.markup import parse


@pytest.fixture
def operator_id(app):
    return make_operator(app)


@pytest.fixture
def signed_in(client, operator_id):
    response = sign_in(client)
    assert response.status_code == 303, response.data
    return client


@pytest.fixture
def edition_id(app):
    with app.app_context():
        session = db.session()
        make_article(session, slug="harbour", headline="Harbour reopens")
        make_article(session, slug="council", headline="Council votes")
        make_subscribers(session, 3)
        edition = editions.create_edition(session, day=date(2026, 11, 25), slugs=["harbour", "council"],
                                          count=8, tz="UTC")
        session.commit()
        return edition.id


def state_of(app, edition_id: int) -> str:
    with app.app_context():
        return db.session().scalar(select(Edition.state).where(Edition.id == edition_id))


def console_rules(app):
    """(method, url) of every console route, with sample arguments."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/operator") or rule.endpoint in ("console.login", "console.logout"):
            continue
        url = re.sub(r"<(?:\w+:)?edition_id>", "1", rule.rule)
        url = re.sub(r"<(?:\w+:)?message_id>", "20240101T000000000000Z-0000abcd", url)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, url


# ---------------------------------------------------------------- signing in

def test_every_console_page_sends_strangers_to_the_sign_in_page(app, client, edition_id):
    token = csrf_token(client)
    checked = 0
    for method, url in console_rules(app):
        response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code in (302, 303), (method, url, response.status_code)
        assert location_path(response).startswith("/operator/login"), (method, url)
        checked += 1
    assert checked >= 15  # the dashboard, editions, their controls, previews, caught mail
    assert state_of(app, edition_id) == "draft"


def test_a_page_asked_for_comes_back_after_signing_in(client, operator_id, edition_id):
    response = client.get(f"/operator/editions/{edition_id}")
    assert location_path(response) == f"/operator/login?next=/operator/editions/{edition_id}"

    form = parse(client.get(location_path(response)).data)
    assert form.find("input", name="next").attrs["value"] == f"/operator/editions/{edition_id}"
    signed = sign_in(client, next_page=f"/operator/editions/{edition_id}")
    assert signed.status_code == 303
    assert location_path(signed) == f"/operator/editions/{edition_id}"
    assert client.get(f"/operator/editions/{edition_id}").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/operator/", "//evil.example/operator/",
                                    "/\\evil.example", "/newsletter", "javascript:alert(1)"])
def test_signing_in_never_leads_off_the_console(client, operator_id, target):
    response = sign_in(client, next_page=target)
    assert location_path(response) == "/operator/"
    assert response.headers["Location"] in ("/operator/", "http://localhost/operator/")


def test_a_wrong_password_or_unknown_email_is_refused_alike(client, operator_id):
    for email, password in [("desk@example.org", "wrong password here"), ("nobody@example.org", PASSWORD),
                            ("not an email", PASSWORD)]:
        response = sign_in(client, email, password)
        assert response.status_code == 401
        page = parse(response.data)
        assert page.find("p", role="alert").text() == "Wrong email or password."
        assert page.find("input", name="email").attrs["value"] == email
        assert client.get("/operator/").status_code == 302


def test_the_email_ignores_case(client, operator_id):
    assert sign_in(client, "Desk@Example.ORG").status_code == 303
    assert client.get("/operator/").status_code == 200


def test_sign_in_needs_the_csrf_token(client, operator_id):
    response = client.post("/operator/login", data={"email": "desk@example.org", "password": PASSWORD})
    assert response.status_code == 400
    assert "The form had expired" in parse(response.data).find("p", role="alert").text()
    assert client.get("/operator/").status_code == 302


def test_the_sign_in_page_sends_the_signed_in_on(signed_in):
    response = signed_in.get("/operator/login?next=/operator/editions")
    assert response.status_code == 302 and location_path(response) == "/operator/editions"


def test_signing_out(signed_in):
    assert signed_in.get("/operator/").status_code == 200
    token = csrf_token(signed_in, "/operator/")
    response = signed_in.post("/operator/logout", data={"csrf_token": token})
    assert response.status_code == 303 and location_path(response) == "/operator/login"
    assert "You are signed out." in parse(signed_in.get("/operator/login").data).text()
    assert signed_in.get("/operator/").status_code == 302


def test_signing_out_needs_the_csrf_token(signed_in):
    assert signed_in.post("/operator/logout").status_code == 400
    assert signed_in.get("/operator/").status_code == 200


def test_a_session_ends_after_console_session_hours(app, signed_in):
    with signed_in.session_transaction() as s:
        s["operator_since"] = int(time.time()) - 13 * 3600
    assert signed_in.get("/operator/").status_code == 302
    app.config["CONSOLE_SESSION_HOURS"] = 24
    assert signed_in.get("/operator/").status_code == 200


def test_a_new_password_ends_the_other_sessions(app, signed_in, operator_id):
    with app.app_context():
        session = db.session()
        session.execute(update(Operator).where(Operator.id == operator_id).values(password_hash="scrypt:new"))
        session.commit()
    assert signed_in.get("/operator/").status_code == 302


def test_a_forged_session_without_the_password_fingerprint_is_refused(client, operator_id):
    with client.session_transaction() as s:
        s["operator_id"], s["operator_since"] = operator_id, int(time.time())
    assert client.get("/operator/").status_code == 302


def test_sign_in_attempts_are_rate_limited(app, client, operator_id):
    app.config["CONSOLE_LOGIN_LIMIT"] = "3 per minute"
    for _ in range(3):
        assert sign_in(client, password="wrong password here").status_code == 401
    response = sign_in(client)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert client.get("/operator/").status_code == 302


# ---------------------------------------------------------------- the pages

def test_the_dashboard(app, signed_in, edition_id):
    app.config.update(DAILY_SEND_AT="07:00", TIMEZONE="Europe/London")
    page = parse(signed_in.get("/operator/").data)
    counts = {dd.attrs["data-count"]: dd.text() for dd in page.find_all("dd")}
    assert counts == {"confirmed": "3", "pending": "0", "unsubscribed": "0", "suppressed": "0"}
    assert "every day at 07:00 Europe/London" in page.text()
    [row] = page.find("tbody").find_all("tr")
    assert f"#{edition_id}" in row.text() and "draft" in row.text()
    assert "desk@example.org" in page.find("form", class_="console-nav__account").text()


def test_the_dashboard_says_when_the_schedule_is_misconfigured(app, signed_in):
    app.config["DAILY_SEND_AT"] = "7 o'clock"
    assert "not working: DAILY_SEND_AT must be" in parse(signed_in.get("/operator/").data).text()


def test_creating_an_edition_from_the_form(app, signed_in):
    with app.app_context():
        make_article(db.session(), slug="talks", headline="Talks end")
        db.session().commit()
    token = csrf_token(signed_in, "/operator/editions")
    response = signed_in.post("/operator/editions", data={"csrf_token": token, "articles": "talks\n"})
    assert response.status_code == 303
    edition_id = int(location_path(response).rsplit("/", 1)[1])
    page = parse(signed_in.get(location_path(response)).data)
    assert f"Edition {edition_id} created." in page.text()
    assert [li.find("a").text() for li in page.find("ol").find_all("li")] == ["Talks end"]


@pytest.mark.parametrize("form, message", [
    ({"articles": "nope"}, "No article has the slug 'nope'."),
    ({"date": "25/11/2026"}, "date must be a date such as 2026-11-25."),
    ({"date": "2001-01-01"}, "No stories published on 2001-01-01"),
])
def test_the_create_form_says_what_is_wrong(signed_in, form, message):
    token = csrf_token(signed_in, "/operator/editions")
    response = signed_in.post("/operator/editions", data={"csrf_token": token} | form)
    assert response.status_code == 422
    page = parse(response.data)
    assert message in page.find("p", role="alert").text()
    if "articles" in form:  # what was typed stays in place
        assert page.find("textarea", name="articles").text() == form["articles"]
    if "date" in form:
        assert page.find("input", name="date").attrs["value"] == form["date"]


def test_the_edition_page(signed_in, edition_id):
    page = parse(signed_in.get(f"/operator/editions/{edition_id}").data)
    assert [a.text() for a in page.find("ol").find_all("a")] == ["Harbour reopens", "Council votes"]
    buttons = [b.text() for b in page.find_all("button")]
    assert "Send to the confirmed subscribers (3)" in buttons and "Pause" not in buttons
    assert page.find("a", href=f"/operator/editions/{edition_id}/preview")
    script = page.find("script")
    assert script.attrs["src"].startswith("/assets/console.js?v=") and not script.text()
    assert page.find("div", class_="progress").attrs["data-progress-url"] == f"/operator/editions/{edition_id}/progress"


def test_the_send_button_starts_the_send(app, signed_in, edition_id, broker):
    page = parse(signed_in.get(f"/operator/editions/{edition_id}").data)
    [form] = [f for f in page.find_all("form") if f.attrs["action"].endswith("/send")]
    token = form.find("input", name="csrf_token").attrs["value"]

    response = signed_in.post(form.attrs["action"], data={"csrf_token": token})

    assert response.status_code == 303 and location_path(response) == f"/operator/editions/{edition_id}"
    assert state_of(app, edition_id) == "sending"
    assert [(name, args) for name, args, _ in published(broker)] == [("delivery.plan", [edition_id])]
    page = parse(signed_in.get(f"/operator/editions/{edition_id}").data)
    assert "Sending started." in page.text()
    assert "Pause" in [b.text() for b in page.find_all("button")]
    assert page.find("noscript")  # the page refreshes itself without scripts

    again = signed_in.post(f"/operator/editions/{edition_id}/send", data={"csrf_token": token})
    assert again.status_code == 303
    assert "Nothing changed: the edition is sending." in parse(signed_in.get(location_path(again)).data).text()
    assert len(published(broker)) == 1


def test_the_send_button_needs_the_csrf_token(app, signed_in, edition_id, broker):
    assert signed_in.post(f"/operator/editions/{edition_id}/send").status_code == 400
    assert state_of(app, edition_id) == "draft"
    assert published(broker) == []


def test_pause_resume_and_cancel_buttons(app, signed_in, edition_id):
    token = csrf_token(signed_in, f"/operator/editions/{edition_id}")
    for action, state in [("send", "sending"), ("pause", "paused"), ("resume", "sending"), ("cancel", "cancelled")]:
        response = signed_in.post(f"/operator/editions/{edition_id}/{action}", data={"csrf_token": token})
        assert response.status_code == 303
        assert state_of(app, edition_id) == state, action
    page = parse(signed_in.get(f"/operator/editions/{edition_id}").data)
    assert not [f for f in page.find_all("form") if "/operator/editions/" in f.attrs["action"]]
    response = signed_in.post(f"/operator/editions/{edition_id}/resend-failed", data={"csrf_token": token})
    assert "No failed deliveries to send again." in parse(signed_in.get(location_path(response)).data).text()


def test_progress_as_json(signed_in, edition_id, client):
    response = signed_in.get(f"/operator/editions/{edition_id}/progress")
    assert response.status_code == 200
    assert response.json | {"rate": 0} == {"id": edition_id, "state": "draft", "total": 0, "sent": 0,
                                           "failed": 0, "pending": 0, "skipped": 0, "rate": 0,
                                           "eta_seconds": 0}
    assert signed_in.get("/operator/editions/999/progress").status_code == 404


def test_progress_asked_without_a_session_is_a_json_401(app, edition_id):
    response = app.test_client().get(f"/operator/editions/{edition_id}/progress",
                                     headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


def test_an_unknown_edition_is_404(signed_in):
    assert signed_in.get("/operator/editions/999").status_code == 404
    token = csrf_token(signed_in, "/operator/editions")
    assert signed_in.post("/operator/editions/999/send", data={"csrf_token": token}).status_code == 404


def test_the_script_is_served_from_our_origin(client):
    with client.get("/assets/console.js") as response:
        assert response.status_code == 200 and "javascript" in response.mimetype
        assert "fetch(url" in response.get_data(as_text=True)


def test_the_console_session_cookie_stays_on_this_site(app, client):
    make_operator(app)
    response = sign_in(client)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
