"""Caught mail in the console (/operator/mail): the built-in catcher's pages, behind the
console's sign-in, except for `newsletter dev` asked from this machine; /dev/mail redirects.
(Moved from tests/test_mailcatcher.py with the pages.)"""
from __future__ import annotations

import pytest

from newsletter import create_app, db, mailcatcher
from tests.support.console import location_path, make_operator, sign_in
from tests.test_mailcatcher import message, smtp_send


@pytest.fixture
def catcher(tmp_path):
    with mailcatcher.CatcherSmtpServer(tmp_path / "caught") as server:
        yield server


@pytest.fixture
def catcher_app(app_config, catcher):
    """The app deployed without NEWSLETTER_SMTP_URL: mail ends in the catcher."""
    app = create_app(app_config | {"SMTP_URL": None, "MAIL_CATCHER_DIR": str(catcher.directory)})
    yield app
    db.engine(app).dispose()


@pytest.fixture
def dev_app(app_config, catcher):
    """The app as `newsletter dev` runs it: SMTP_URL is the catcher's, MAIL_CATCHER=1."""
    app = create_app(app_config | {"SMTP_URL": catcher.url, "MAIL_CATCHER": 1,
                                   "MAIL_CATCHER_DIR": str(catcher.directory)})
    yield app
    db.engine(app).dispose()


@pytest.fixture
def operator_client(catcher_app):
    make_operator(catcher_app)
    client = catcher_app.test_client()
    assert sign_in(client).status_code == 303
    return client


def only_summary(catcher) -> mailcatcher.CaughtSummary:
    [summary] = mailcatcher.list_messages(catcher.directory)
    return summary


# ---------------------------------------------------------------- who may see caught mail

def test_caught_mail_needs_a_signed_in_operator(catcher, catcher_app):
    smtp_send(catcher, message(subject="Confirm your sign-up"))
    summary = only_summary(catcher)
    client = catcher_app.test_client()  # from loopback, as a proxy on the same host would be
    for path in ("/operator/mail", f"/operator/mail/{summary.id}", f"/operator/mail/{summary.id}/html",
                 f"/operator/mail/{summary.id}/raw"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert location_path(response).startswith("/operator/login?next=/operator/mail"), path
        assert b"Confirm your sign-up" not in response.data


def test_newsletter_dev_shows_it_to_this_machine_without_sign_in(catcher, dev_app):
    smtp_send(catcher, message(subject="Through the stack"))
    response = dev_app.test_client().get("/operator/mail")
    assert response.status_code == 200
    assert "Through the stack" in response.get_data(as_text=True)


def test_newsletter_dev_asks_other_machines_to_sign_in(catcher, dev_app):
    client = dev_app.test_client()
    response = client.get("/operator/mail", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert response.status_code == 302
    assert location_path(response).startswith("/operator/login")


def test_the_old_address_redirects(catcher, dev_app):
    smtp_send(catcher, message(subject="Old link"))
    summary = only_summary(catcher)
    client = dev_app.test_client()
    response = client.get("/dev/mail")
    assert response.status_code == 302 and location_path(response) == "/operator/mail"
    assert location_path(client.get(f"/dev/mail/{summary.id}/html")) == f"/operator/mail/{summary.id}/html"
    assert "Old link" in client.get("/dev/mail", follow_redirects=True).get_data(as_text=True)


def test_the_pages_are_404_when_smtp_is_configured(app, client):
    make_operator(app)
    assert sign_in(client).status_code == 303
    assert client.get("/operator/mail").status_code == 404
    assert client.get("/dev/mail").status_code == 404
    assert "Caught mail" not in client.get("/operator/").get_data(as_text=True)


# ---------------------------------------------------------------- the pages

def test_caught_mail_shows_on_the_pages(catcher, operator_client):
    smtp_send(catcher, message(to="ann@example.org", subject="Confirm your <sign-up>",
                               html='<p onclick="x()">Hi &amp; "welcome"</p><script>alert(1)</script>'))
    listing = operator_client.get("/operator/mail")
    assert listing.status_code == 200
    page = listing.get_data(as_text=True)
    assert "ann@example.org" in page and "Confirm your &lt;sign-up&gt;" in page
    summary = only_summary(catcher)
    assert f"/operator/mail/{summary.id}" in page
    assert 'href="/operator/mail" aria-current="page"' in page  # the console's own link

    shown = operator_client.get(f"/operator/mail/{summary.id}")
    assert shown.status_code == 200
    body = shown.get_data(as_text=True)
    assert "Confirm your &lt;sign-up&gt;" in body
    assert '<a href="http://newsletter.test/newsletter/confirm/abc"' in body  # the text part, linked
    assert "<script>alert(1)</script>" not in body  # the HTML part is not in the page itself
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in body
    assert f'src="/operator/mail/{summary.id}/html"' in body


def test_the_html_part_has_its_own_strict_policy(catcher, operator_client):
    smtp_send(catcher, message(html="<p>Hi</p><script>alert(1)</script>"))
    response = operator_client.get(f"/operator/mail/{only_summary(catcher).id}/html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "<script>alert(1)</script>" in response.get_data(as_text=True)  # as sent, but inert:
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script-src" not in policy
    assert "frame-ancestors 'self'" in policy
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_the_source_is_plain_text(catcher, operator_client):
    smtp_send(catcher, message(subject="Source"))
    response = operator_client.get(f"/operator/mail/{only_summary(catcher).id}/raw")
    assert response.mimetype == "text/plain"
    assert b"Subject: Source" in response.data


def test_unknown_messages_are_404(operator_client):
    for path in ("/operator/mail/nope", "/operator/mail/20240101T000000000000Z-0000abcd",
                 "/operator/mail/20240101T000000000000Z-0000abcd/html", "/operator/mail/..%2F..%2Fsecret/raw"):
        assert operator_client.get(path).status_code == 404, path


def test_an_empty_catcher_says_so(operator_client):
    response = operator_client.get("/operator/mail")
    assert response.status_code == 200
    assert "No mail caught yet" in response.get_data(as_text=True)
