"""Operator previews of an edition: the real mail in sandboxed frames, and a test send."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from newsletter import db, editions
from newsletter.models import Delivery
from tests.factories import image, make_article, paragraph
from tests.web.markup import parse

pytestmark = pytest.mark.usefixtures("signed_in")  # tests/web/conftest.py


@pytest.fixture
def edition_id(app):
    with app.app_context():
        session = db.session()
        make_article(session, slug="talks", headline="Talks end in a deal",
                     body=[paragraph("Negotiators agreed on Tuesday."), image("Delegates.", "Jo Lens/Agency")])
        edition = editions.create_edition(session, day=date(2026, 11, 25), slugs=["talks"], count=8, tz="UTC")
        session.commit()
        return edition.id


def preview_url(edition_id: int) -> str:
    return f"/operator/editions/{edition_id}/preview"


def csrf_token(client, edition_id: int) -> str:
    page = parse(client.get(preview_url(edition_id)).data)
    return page.find("input", name="csrf_token").attrs["value"]


def test_the_preview_page(client, edition_id):
    response = client.get(preview_url(edition_id))
    assert response.status_code == 200
    page = parse(response.data)
    frames = page.find_all("iframe")
    html_url = f"{preview_url(edition_id)}/html?audience=public"
    assert [f.attrs["src"] for f in frames] == [html_url, html_url]
    assert all(f.attrs["sandbox"] == "allow-popups allow-popups-to-escape-sandbox" for f in frames)
    assert [f.attrs["width"] for f in frames] == ["100%", "375"]
    text = page.find("pre").text()
    assert "Talks end in a deal" in text and "Hello Sam Reader," in text
    assert "Photo: Delegates. (Jo Lens/Agency)" in text
    assert "http://newsletter.test/newsletter/unsubscribe/sample" in text
    assert "The Daily Edition — 25 November 2026: Talks end in a deal" in page.text()
    assert "List-Unsubscribe=One-Click" in page.text()


def test_the_html_part_under_its_own_policy(client, edition_id):
    response = client.get(f"{preview_url(edition_id)}/html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy_header = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy_header and "sandbox" in policy_header
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    html = response.get_data(as_text=True)
    assert "Talks end in a deal" in html and "@media (prefers-color-scheme: dark)" in html
    assert 'href="http://newsletter.test/articles/talks"' in html


def test_the_members_audience(client, edition_id):
    public = client.get(f"{preview_url(edition_id)}/html?audience=public").get_data(as_text=True)
    members = client.get(f"{preview_url(edition_id)}/html?audience=members").get_data(as_text=True)
    assert "Become a member" in public and "Thank you for being a member" in members
    assert client.get(f"{preview_url(edition_id)}?audience=everyone").status_code == 400


def test_an_unknown_edition(client, edition_id):
    assert client.get(preview_url(edition_id + 1)).status_code == 404
    assert client.get(f"{preview_url(edition_id + 1)}/html").status_code == 404


def test_only_for_signed_in_operators(app, edition_id):
    stranger = app.test_client()
    for path in (preview_url(edition_id), f"{preview_url(edition_id)}/html"):
        response = stranger.get(path)
        assert response.status_code == 302 and "/operator/login?next=" in response.headers["Location"]
    # Refused by CSRF protection (400) before the view, or sent to the sign-in page (303).
    assert stranger.post(f"/operator/editions/{edition_id}/test-send",
                         data={"to": "a@example.org"}).status_code in (400, 303)


def test_a_test_send_reaches_the_address_and_not_the_ledger(app, client, edition_id, smtp_server):
    response = client.post(f"/operator/editions/{edition_id}/test-send",
                           data={"to": "Desk@Example.org", "csrf_token": csrf_token(client, edition_id)})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"{preview_url(edition_id)}?audience=public")
    [msg] = smtp_server.wait_for("desk@example.org")
    assert msg["Subject"] == "[TEST] The Daily Edition — 25 November 2026: Talks end in a deal"
    assert msg["To"] == "Desk@example.org"  # the local part keeps its case
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert "Negotiators agreed on Tuesday." in msg.get_body(("html",)).get_content()
    assert "/newsletter/unsubscribe/sample" in msg["List-Unsubscribe"]
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Delivery)) == 0
        assert editions.get(db.session(), edition_id).state == "draft"
    assert "Test mail sent to Desk@example.org." in parse(client.get(response.headers["Location"]).data).text()


def test_a_test_send_to_a_bad_address(client, edition_id, smtp_server):
    response = client.post(f"/operator/editions/{edition_id}/test-send",
                           data={"to": "not an address", "csrf_token": csrf_token(client, edition_id)})
    assert response.status_code == 400
    assert "valid email address" in parse(response.data).find("p", role="alert").text()
    assert smtp_server.messages == []


def test_a_test_send_the_server_refuses(client, edition_id, smtp_server):
    smtp_server.fault = lambda rcpt: "550 No such mailbox"
    response = client.post(f"/operator/editions/{edition_id}/test-send",
                           data={"to": "gone@example.org", "csrf_token": csrf_token(client, edition_id)})
    assert response.status_code == 502
    assert "550" in parse(response.data).find("p", role="alert").text()


def test_a_test_send_needs_the_csrf_token(client, edition_id, smtp_server):
    response = client.post(f"/operator/editions/{edition_id}/test-send", data={"to": "desk@example.org"})
    assert response.status_code == 400
    assert smtp_server.messages == []
