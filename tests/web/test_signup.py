"""The sign-up form: the inline box, /newsletter, POST /newsletter/signup (CSRF, honeypot, errors)."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from newsletter.consent import DEFAULT_CONSENT_TEXT
from newsletter.models import ConsentRecord, ConsentText, Subscriber
from tests.factories import make_article, paragraph
from tests.web.markup import parse
from tests.web.signups import (close_connections, count, csrf_token,  # noqa: F401
                               post_signup, published, run_queued, signup_message)

CHECK_INBOX = "/newsletter/check-your-inbox"


def box(html: bytes):
    return parse(html).find("section", class_="newsletter-box")


def field_error(page, field_id: str) -> str:
    field = page.find("input", id=field_id)
    assert field.attrs["aria-invalid"] == "true"
    return page.find("p", id=field.attrs["aria-describedby"]).text()


# ---------------------------------------------------------------- the pages

def test_standalone_page_has_the_form(client):
    response = client.get("/newsletter")

    assert response.status_code == 200
    form = box(response.data).find("form")
    assert form.attrs["method"] == "post" and form.attrs["action"] == "/newsletter/signup"
    assert form.find("input", name="email").attrs["type"] == "email"
    assert form.find("input", name="csrf_token").attrs["value"]
    assert form.find("input", name="website").attrs["tabindex"] == "-1"
    assert form.find("input", name="page").attrs["value"] == "/newsletter"
    consent = form.find("input", name="consent")
    assert consent.attrs["type"] == "checkbox" and "required" in consent.attrs
    label = form.find("label", for_="daily-edition-consent")
    assert DEFAULT_CONSENT_TEXT in label.text()
    assert label.find("a").attrs["href"] == "/terms"
    assert parse(response.data).find("h1").text() == "The Daily Edition"


def test_consent_wording_comes_from_the_configuration(app, client):
    app.config["CONSENT_TEXT"] = "Send me the Daily Edition, please."

    label = box(client.get("/newsletter").data).find("label", for_="daily-edition-consent")

    assert "Send me the Daily Edition, please." in label.text()


def test_article_box_sends_the_article_and_the_page(client, session):
    make_article(session, slug="syria-talks", body=[paragraph("One.")])
    session.commit()

    form = box(client.get("/articles/syria-talks").data).find("form")

    assert form.find("input", name="article").attrs["value"] == "syria-talks"
    assert form.find("input", name="page").attrs["value"] == "/articles/syria-talks"
    # The story page may be cached: its token is fetched when the form is sent (csrf.js).
    field = form.find("input", name="csrf_token")
    assert field.attrs["value"] == "" and "data-csrf" in field.attrs


def test_front_page_box_sends_no_article(client):
    form = box(client.get("/").data).find("form")

    assert form.find("input", name="article").attrs["value"] == ""
    assert form.find("input", name="page").attrs["value"] == "/"


# ---------------------------------------------------------------- success

def test_signup_redirects_to_check_your_inbox_and_records_consent(client, session, broker, run_queued,
                                                                  smtp_server):
    response = post_signup(client, "Reader@Example.com", article="syria-talks",
                           page="/articles/syria-talks",
                           headers={"User-Agent": "TestBrowser/1.0"})

    assert response.status_code == 303
    assert response.headers["Location"] == CHECK_INBOX
    request_id, email, context, text, _at = signup_message(broker)
    assert (email, text) == ("Reader@example.com", DEFAULT_CONSENT_TEXT)
    assert context == {"ip": "127.0.0.1", "user_agent": "TestBrowser/1.0", "page": "/articles/syria-talks",
                       "article": "syria-talks", "source": "form"}
    assert count(session) == 0  # the worker stores it

    assert run_queued() == ["subscribers.signup"]
    subscriber = session.scalars(select(Subscriber)).one()
    assert (subscriber.email, subscriber.state, subscriber.source) == ("Reader@example.com", "pending", "form")
    record = session.scalars(select(ConsentRecord)).one()
    assert (record.action, record.source, record.ip) == ("signup", "form", "127.0.0.1")
    assert (record.page, record.article, record.user_agent) == ("/articles/syria-talks", "syria-talks", "TestBrowser/1.0")
    assert record.version == hashlib.sha256(DEFAULT_CONSENT_TEXT.encode()).hexdigest()
    assert session.get(ConsentText, record.version).text == DEFAULT_CONSENT_TEXT
    assert record.request_id == request_id
    [mail] = smtp_server.to("Reader@example.com")
    assert mail["Subject"] == "Confirm your subscription to The Daily Edition"


def test_check_your_inbox_page(client):
    page = parse(client.get(CHECK_INBOX).data)

    assert page.find("h1").text() == "Check your inbox"


def test_page_falls_back_to_the_referer(client, session, run_queued):
    post_signup(client, headers={"Referer": "http://newsletter.test/articles/x"})
    run_queued()

    assert session.scalars(select(ConsentRecord)).one().page == "http://newsletter.test/articles/x"


@pytest.mark.parametrize("raw, stored", [
    ("用户@例子.广告", "用户@例子.广告"),
    ("josé@bücher.de", "josé@bücher.de"),
    ("reader@BÜCHER.de", "reader@bücher.de"),
    ("  spaced@example.com ", "spaced@example.com"),
])
def test_unicode_and_idn_addresses_are_taken(client, session, run_queued, raw, stored):
    response = post_signup(client, raw)

    assert response.status_code == 303
    run_queued()
    assert session.scalars(select(Subscriber.email)).one() == stored


# ---------------------------------------------------------------- refused input

@pytest.mark.parametrize("email, message", [
    ("", "Enter your email address."),
    ("not-an-address", "Enter a valid email address, like name@example.com."),
    ("reader@example.com\r\nBcc: victim@example.com", "Enter an email address on a single line."),
    ("reader@example.com\nX-Injected: 1", "Enter an email address on a single line."),
    ("a" * 250 + "@example.com", "An email address can be at most 254 characters long."),
    ("x" * 100_000, "An email address can be at most 254 characters long."),
])
def test_bad_address_is_shown_next_to_the_field_with_the_input_kept(client, session, run_queued, email,
                                                                   message):
    response = post_signup(client, email)
    assert run_queued() == []

    assert response.status_code == 422
    page = parse(response.data)
    assert field_error(page, "daily-edition-email") == message
    assert page.find("input", name="email").attrs["value"] == email
    assert "checked" in page.find("input", name="consent").attrs
    assert count(session) == 0


def test_missing_consent_is_shown_next_to_the_box_with_the_address_kept(client, session, run_queued):
    response = post_signup(client, "reader@example.com", consent=False, article="a-story",
                           page="/articles/a-story")
    assert run_queued() == []

    assert response.status_code == 422
    page = parse(response.data)
    assert field_error(page, "daily-edition-consent") == "Tick the box to agree to the newsletter terms."
    assert page.find("input", name="email").attrs["value"] == "reader@example.com"
    assert "checked" not in page.find("input", name="consent").attrs
    # where it happened is kept for the next try
    assert page.find("input", name="article").attrs["value"] == "a-story"
    assert page.find("input", name="page").attrs["value"] == "/articles/a-story"
    assert page.find("input", name="csrf_token").attrs["value"]
    assert count(session) == 0


def test_re_rendered_form_escapes_the_input(client):
    response = post_signup(client, '"><script>alert(1)</script>')

    assert response.status_code == 422
    assert b"<script>alert(1)</script>" not in response.data


# ---------------------------------------------------------------- honeypot

def test_filled_honeypot_answers_like_success_and_stores_nothing(client, session, broker, run_queued):
    success = post_signup(client, "human@example.com")
    bot = post_signup(client, "bot@example.com", website="http://spam.example")

    assert (bot.status_code, bot.headers["Location"], bot.data) == \
        (success.status_code, success.headers["Location"], success.data)
    assert len(published(broker)) == 1
    run_queued()
    assert session.scalars(select(Subscriber.email)).all() == ["human@example.com"]


def test_honeypot_wins_even_over_invalid_input(client, session, run_queued):
    response = post_signup(client, "nonsense", consent=False, website="x")

    assert response.status_code == 303 and response.headers["Location"] == CHECK_INBOX
    assert run_queued() == []
    assert count(session) == 0


# ---------------------------------------------------------------- CSRF

def test_form_without_csrf_token_is_refused_and_shown_again(client, session, run_queued):
    client.get("/newsletter")  # a session, but no token sent
    response = client.post("/newsletter/signup", data={"email": "reader@example.com", "consent": "yes"})
    assert run_queued() == []

    assert response.status_code == 400
    page = parse(response.data)
    assert "Please send it again" in page.find("p", class_="form-error").text()
    assert page.find("input", name="email").attrs["value"] == "reader@example.com"
    assert page.find("input", name="csrf_token").attrs["value"]  # a fresh one, to try again
    assert count(session) == 0


def test_form_with_a_wrong_csrf_token_is_refused(client, session, run_queued):
    response = post_signup(client, token="forged-token")

    assert response.status_code == 400
    assert run_queued() == []
    assert count(session) == 0


def test_csrf_token_of_another_session_is_refused(app, client, session, run_queued):
    other = app.test_client()
    response = post_signup(client, token=csrf_token(other))

    assert response.status_code == 400
    assert run_queued() == []
    assert count(session) == 0


def test_form_with_the_fetched_csrf_token_is_accepted(client, session):
    make_article(session, slug="story")
    session.commit()
    client.get("/articles/story")  # a cacheable page: no token in it, no session cookie set

    fetched = client.get("/api/v1/csrf")  # what csrf.js does when the box's form is sent
    response = post_signup(client, token=fetched.get_json()["csrf_token"], article="story",
                           page="/articles/story")

    assert fetched.headers["Cache-Control"] == "no-store"
    assert response.status_code == 303


def test_box_sent_without_javascript_comes_back_once_with_a_token_and_the_input(client, session, run_queued):
    make_article(session, slug="story")
    session.commit()
    form = box(client.get("/articles/story").data).find("form")
    data = {n.attrs["name"]: n.attrs.get("value", "") for n in form.find_all("input")}
    data |= {"email": "reader@example.com", "consent": "yes"}

    refused = client.post("/newsletter/signup", data=data)
    again = parse(refused.data).find("form", class_="newsletter-box__form")
    resent = {n.attrs["name"]: n.attrs.get("value", "") for n in again.find_all("input")} | {"consent": "yes"}
    accepted = client.post("/newsletter/signup", data=resent)

    assert refused.status_code == 400 and resent["email"] == "reader@example.com"
    assert resent["article"] == "story" and resent["csrf_token"]
    assert accepted.status_code == 303
    assert len(run_queued()) == 1


def test_csrf_can_be_switched_off(app, client, session, run_queued):
    app.config["WTF_CSRF_ENABLED"] = False

    response = client.post("/newsletter/signup", data={"email": "reader@example.com", "consent": "yes"})

    assert response.status_code == 303
    run_queued()
    assert count(session) == 1


def test_signup_is_post_only(client):
    assert client.get("/newsletter/signup").status_code == 405
