"""The console in headless Chromium: sign in, press Send, watch the progress move by
itself (assets/console.js under the site's CSP) until a real worker has sent every mail."""
from __future__ import annotations

import re
from datetime import date

import pytest

from newsletter import db, editions
from tests.factories import make_article
from tests.support.browser import snap
from tests.support.console import PASSWORD, make_operator
from tests.support.delivery import address, make_subscribers

pytestmark = pytest.mark.slow
SUBSCRIBERS = 30


@pytest.fixture
def edition_id(app):
    make_operator(app)
    with app.app_context():
        session = db.session()
        make_article(session, slug="harbour", headline="Harbour reopens after the storm")
        make_subscribers(session, SUBSCRIBERS)
        edition = editions.create_edition(session, day=date(2026, 11, 25), slugs=["harbour"], count=8, tz="UTC")
        session.commit()
        return edition.id


def test_send_from_the_console_and_watch_it_go(live_app, browser_page, edition_id, worker, smtp_server):
    page = browser_page
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
            and not m.location.get("url", "").endswith("/favicon.ico") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    # Ten messages a second: slow enough to see the counts move before the send ends.
    worker(extra_env={"NEWSLETTER_SEND_RATE": "10", "NEWSLETTER_SEND_BATCH_SIZE": "10"})

    page.goto(f"{live_app.url}/operator/editions/{edition_id}")
    assert "/operator/login?next=" in page.url
    page.get_by_label("Email").fill("desk@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    snap(page, "1-sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/operator/editions/{edition_id}")
    snap(page, "2-draft")

    page.get_by_role("button", name=f"Send to the confirmed subscribers ({SUBSCRIBERS})").click()
    page.wait_for_url(f"**/operator/editions/{edition_id}")
    assert page.get_by_role("status").first.inner_text() == "Sending started."
    sent = page.locator('[data-field="sent"]')
    # The script, not a reload, moves the counts: the notice stays on the page meanwhile.
    page.wait_for_function(
        "() => { const n = Number(document.querySelector('[data-field=sent]').textContent);"
        " return n > 0 && document.querySelector('[data-field=state]').textContent === 'sending'; }",
        timeout=120_000)
    assert page.get_by_role("status").first.inner_text() == "Sending started."
    snap(page, "3-sending")

    # When the state changes the script reloads the page, whose buttons then match it.
    page.wait_for_function("() => document.querySelector('[data-field=state]').textContent === 'sent'",
                           timeout=180_000)
    assert sent.inner_text() == str(SUBSCRIBERS)
    assert page.get_by_role("button", name="Pause").count() == 0
    assert re.search(r"\bsent\b", page.locator("span.state").inner_text())
    snap(page, "4-sent")
    assert len(smtp_server.wait_for(address(SUBSCRIBERS), timeout=10)) == 1
    assert problems == []
