"""The Daily Edition cycle in real headless Chromium, as a reader and a mail provider do it.

Real parts throughout: the app on a live server over HTTP, a real Celery worker sending
through a real SMTP server, the test's database and Redis. Each step leaves a screenshot
in test-artifacts/browser/.
"""
from __future__ import annotations

import re
import urllib.request
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from newsletter import db
from newsletter.models import Subscriber
from tests.factories import make_article, paragraph
from tests.support.browser import snap
from tests.web.signups import run_queued

pytestmark = pytest.mark.slow

READER = "reader@example.com"


def test_signup_confirm_welcome_one_click_unsubscribe(app, live_app, browser_page, smtp_server,
                                                      worker):
    worker()
    page = browser_page
    page.goto(f"{live_app.url}/articles/{published_article(app)}")
    snap(page, "1-article")

    box = page.locator("#daily-edition")
    box.get_by_label("Email address").fill(READER)
    box.get_by_role("checkbox").check()
    snap(page, "2-box-filled")
    box.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/newsletter/check-your-inbox")
    expect_text(page, re.compile(r"check your inbox", re.I))
    snap(page, "3-check-your-inbox")

    confirmation = only_mail(smtp_server, READER, 1)
    show_mail(page, confirmation, "4-confirmation-mail")
    confirm_url = link_in(confirmation, "/newsletter/confirm/")
    assert confirm_url.startswith(live_app.url + "/")
    page.goto(confirm_url)
    snap(page, "5-confirm-page")
    assert subscriber_state(app, READER) == "pending", "GET on the confirmation link confirmed"

    page.get_by_role("button", name=re.compile(r"confirm", re.I)).click()
    page.wait_for_load_state()
    expect_text(page, re.compile(r"you.re in|confirmed|subscribed", re.I))
    snap(page, "6-confirmed")
    assert subscriber_state(app, READER) == "confirmed"

    welcome = only_mail(smtp_server, READER, 2)
    show_mail(page, welcome, "7-welcome-mail")
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = http_unsubscribe_url(welcome)
    assert unsubscribe_url.startswith(live_app.url + "/newsletter/unsubscribe/")

    assert one_click_unsubscribe(unsubscribe_url) == 200
    assert subscriber_state(app, READER) == "unsubscribed"

    page.goto(unsubscribe_url)
    resubscribe = page.get_by_role("button", name=re.compile(r"resubscribe|subscribe again", re.I))
    expect_visible(resubscribe)
    snap(page, "8-unsubscribed-page")


def test_signup_box_works_from_the_keyboard_alone(app, live_app, browser_page, run_queued):
    page = browser_page
    page.goto(f"{live_app.url}/articles/{published_article(app)}")
    assert unlabelled_fields(page, "#daily-edition form") == []

    tab_until(page, "daily-edition-email")
    page.keyboard.type(READER)
    page.keyboard.press("Tab")
    assert focused_id(page) == "daily-edition-consent"
    page.keyboard.press("Space")
    assert page.locator("#daily-edition-consent").is_checked()
    snap(page, "keyboard-filled")

    # On to the button: the terms link comes first, the honeypot never takes focus.
    for _ in range(5):
        page.keyboard.press("Tab")
        assert focused_id(page) != "daily-edition-website", "the honeypot took keyboard focus"
        if page.evaluate("document.activeElement.type") == "submit":
            break
    else:
        pytest.fail("Tab never reached the Sign up button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/newsletter/check-your-inbox")
    snap(page, "keyboard-submitted")
    assert run_queued() == ["subscribers.signup"]  # what a worker does with the queued sign-up
    assert subscriber_state(app, READER) == "pending"


# ---------------------------------------------------------------- the app's side

def published_article(app) -> str:
    with app.app_context():
        session = db.session()
        article = make_article(session, body=[paragraph("A first paragraph."),
                                              paragraph("A second paragraph.")])
        session.commit()
        return article.slug


def subscriber_state(app, address: str) -> str | None:
    with app.app_context():
        return db.session().scalar(select(Subscriber.state).where(Subscriber.email == address))


# ---------------------------------------------------------------- mail, as a mail provider sees it

def only_mail(smtp_server, address: str, count: int) -> EmailMessage:
    """The `count`-th mail to `address`, once it has arrived, and no more than that."""
    mails = smtp_server.wait_for(address, count)
    assert len(mails) == count, f"expected mail #{count} to {address}, got {len(mails)}"
    return mails[count - 1]


def link_in(mail: EmailMessage, path: str) -> str:
    text = mail.get_body(preferencelist=("plain",)).get_content()
    found = re.findall(r"https?://\S+" + re.escape(path) + r"[^\s<>\"]+", text)
    assert found, f"no {path} link in:\n{text}"
    return found[0]


def http_unsubscribe_url(mail: EmailMessage) -> str:
    """The http(s) URL among the List-Unsubscribe header's <…> entries (RFC 2369)."""
    urls = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"] or "")
    web = [u for u in urls if u.startswith(("https://", "http://"))]
    assert web, f"no http(s) URL in List-Unsubscribe: {mail['List-Unsubscribe']!r}"
    assert any(u.startswith("mailto:") for u in urls), "no mailto: in List-Unsubscribe"
    return web[0]


def one_click_unsubscribe(url: str) -> int:
    """RFC 8058's POST, as a mail provider sends it: no cookies, no CSRF token, no page."""
    request = urllib.request.Request(
        url, data=b"List-Unsubscribe=One-Click", method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


# ---------------------------------------------------------------- the browser's side

def expect_text(page, pattern: re.Pattern) -> None:
    from playwright.sync_api import expect

    expect(page.locator("main")).to_contain_text(pattern)


def expect_visible(locator) -> None:
    from playwright.sync_api import expect

    expect(locator).to_be_visible()


def show_mail(page, mail: EmailMessage, name: str) -> None:
    """Render the mail's HTML part in the page and keep a screenshot of it."""
    page.goto("about:blank")  # leave our pages: their CSP would block the mail's inline CSS
    page.set_content(mail.get_body(preferencelist=("html",)).get_content())
    snap(page, name)


def focused_id(page) -> str:
    return page.evaluate("document.activeElement ? document.activeElement.id : ''")


def tab_until(page, element_id: str, limit: int = 40) -> None:
    """Press Tab from the top of the page until `element_id` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused_id(page) == element_id:
            return
    pytest.fail(f"#{element_id} not reached with {limit} presses of Tab")


def unlabelled_fields(page, form: str) -> list[str]:
    """Fields a person can reach in `form` that have no label with text."""
    return page.evaluate("""(form) => [...document.querySelectorAll(form + ' input, '
                                                                  + form + ' select, '
                                                                  + form + ' textarea')]
        .filter(el => el.type !== 'hidden' && el.tabIndex >= 0)
        .filter(el => ![...el.labels].some(label => label.textContent.trim()))
        .map(el => el.name || el.id)""", form)
