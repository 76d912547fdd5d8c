"""The membership prompt's whole loop in headless Chromium: three stories read, the appeal,
"Not now", gone for the snooze; a member sees nothing. Real parts: the app on a live server,
the test's database and Redis, prompt.js under the page's CSP. Screenshots go to
test-artifacts/browser/.
"""
from __future__ import annotations

import secrets

import pytest
from itsdangerous import URLSafeTimedSerializer

from newsletter import db, memberships, prompt_history
from newsletter.models import Membership
from newsletter.web import member_session
from tests.factories import make_article, paragraph
from tests.support.browser import snap
from tests.support.prompts import rules_file

pytestmark = pytest.mark.slow

# Headless Chromium says "HeadlessChrome", which crawlerdetect rightly calls a bot.
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
RULES = {"version": "browser", "prompts": [
    {"id": "appeal", "kind": "membership", "min_reads": 3, "read_window_days": 30, "snooze_days": 7,
     "frequency_cap": {"impressions": 4, "window_days": 30},
     "experiment": {"name": "browser", "control_share": 0,
                    "variants": [{"id": "browser:a", "copy": {
                        "title": "You have read {articles_read} stories",
                        "body": ["Keep them coming: join for {price}."], "button": "Join for {price}"}}]}}]}


@pytest.fixture
def app_config(app_config, tmp_path):
    return app_config | {"PROMPT_RULES": rules_file(tmp_path, RULES)}


@pytest.fixture
def stories(app):
    with app.app_context():
        session = db.session()
        slugs = [make_article(session, slug=f"story-{n}", headline=f"Story {n}",
                              body=[paragraph(f"Paragraph {p} of story {n}.") for p in range(1, 5)]).slug
                 for n in range(1, 5)]
        session.commit()
    return slugs


@pytest.fixture
def reader(browser_page):
    browser_page.set_extra_http_headers({"User-Agent": DESKTOP})
    return browser_page


def read(page, url: str):
    """Open a story and wait until prompt.js has filled (or left empty) the slot."""
    page.goto(url)
    page.locator("[data-prompt-slot][data-prompt-ready]").wait_for(state="attached")
    return page.locator("[data-prompt-slot] .membership-prompt")


def wait_for_count(broker, event: str, expected: int, page) -> None:
    """Until the event has reached the server (prompt.js sends it without waiting for the page)."""
    for _ in range(100):
        if prompt_history.counts(broker, "browser:a")[event] >= expected:
            return
        page.wait_for_timeout(100)
    pytest.fail(f"no {event} event arrived")


def test_three_stories_then_the_appeal_then_not_now(live_app, reader, stories, broker):
    from playwright.sync_api import expect

    for n, slug in enumerate(stories[:2], 1):
        expect(read(reader, f"{live_app.url}/articles/{slug}")).to_have_count(0)
        snap(reader, f"{n}-story-{n}-no-appeal")

    appeal = read(reader, f"{live_app.url}/articles/{stories[2]}")
    expect(appeal).to_be_visible()
    expect(appeal.locator("h2")).to_have_text("You have read 3 stories")
    expect(appeal.get_by_role("button", name="Join for $6 a month")).to_be_visible()
    assert appeal.locator("input[name=variant]").get_attribute("value") == "browser:a"
    appeal.scroll_into_view_if_needed()
    snap(reader, "3-story-3-appeal")
    wait_for_count(broker, "seen", 1, reader)

    appeal.get_by_role("button", name="Not now").click()
    expect(appeal).to_have_count(0)
    snap(reader, "4-dismissed")
    wait_for_count(broker, "dismiss", 1, reader)

    expect(read(reader, f"{live_app.url}/articles/{stories[3]}")).to_have_count(0)
    expect(read(reader, f"{live_app.url}/articles/{stories[0]}")).to_have_count(0)
    snap(reader, "5-snoozed")


def test_join_on_the_appeal_of_a_cacheable_page_gets_past_csrf(live_app, reader, stories, broker):
    """The slot's HTML carries no CSRF token (it is kept for every reader): csrf.js fetches the
    reader's own when Join is pressed. No Stripe key here, so checkout answers that payments are
    unavailable, which it says only once the token has passed."""
    from playwright.sync_api import expect

    for slug in stories[:2]:
        read(reader, f"{live_app.url}/articles/{slug}")
    appeal = read(reader, f"{live_app.url}/articles/{stories[2]}")
    assert appeal.locator("input[name=csrf_token]").get_attribute("value") == ""

    appeal.get_by_role("button", name="Join for $6 a month").click()

    expect(reader.get_by_text("can’t take payments right now")).to_be_visible()
    assert "could not verify the form" not in reader.content()
    snap(reader, "join-past-csrf")
    wait_for_count(broker, "click", 1, reader)


def test_not_now_holds_for_a_reader_who_is_not_counted(app, live_app, reader, stories, broker, tmp_path):
    """Consent required and not given: nothing is kept server-side, so a prompt that needs no
    history shows on every story; "Not now" is kept by the browser instead."""
    from playwright.sync_api import expect

    rules = {"version": "uncounted", "prompts": [
        {"id": "signup-always", "kind": "newsletter", "snooze_days": 7,
         "experiment": {"name": "uncounted", "control_share": 0,
                        "variants": [{"id": "uncounted:a", "copy": {"title": "Get our mail"}}]}}]}
    app.config.update(PROMPT_RULES=rules_file(tmp_path, rules, "uncounted.json"), PROMPT_REQUIRE_CONSENT=True)
    url = f"{live_app.url}/articles/{{}}"

    prompt = read(reader, url.format(stories[0])).page.locator("[data-prompt-slot] .prompt--newsletter")
    expect(prompt).to_be_visible()
    prompt.get_by_role("button", name="Not now").click()
    expect(prompt).to_have_count(0)
    for slug in stories[1:3]:
        read(reader, url.format(slug))
        expect(reader.locator("[data-prompt-slot] .prompt--newsletter")).to_have_count(0)
    snap(reader, "uncounted-not-now-kept")

    assert "rid" not in {c["name"] for c in reader.context.cookies()}  # nothing kept about them
    assert reader.evaluate("localStorage.getItem('prompt-snooze:signup-always')") is not None
    reader.evaluate("localStorage.clear()")  # the same reader, storage cleared: asked again
    read(reader, url.format(stories[3]))
    expect(reader.locator("[data-prompt-slot] .prompt--newsletter")).to_be_visible()


def test_a_member_sees_no_appeal_and_no_ads(app, live_app, reader, stories):
    from playwright.sync_api import expect

    with app.app_context():
        session = db.session()
        member = memberships.new_reader(session, "member@example.com")
        session.add(Membership(reader_id=member.id, stripe_subscription_id=f"sub_{secrets.token_hex(6)}",
                               status="active"))
        session.commit()
    cookie = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=member_session.SALT).dumps(member.id)
    reader.context.add_cookies([{"name": member_session.COOKIE, "value": cookie, "url": live_app.url}])

    for slug in stories:
        reader.goto(f"{live_app.url}/articles/{slug}")
        expect(reader.locator("h1")).to_have_text(slug.replace("story-", "Story "))
        expect(reader.locator(".membership-prompt, .prompt-slot, .ad-slot")).to_have_count(0)
    snap(reader, "member-reads-clean")


def test_headless_chromium_as_it_is_gets_nothing(live_app, browser_page, stories, broker):
    from playwright.sync_api import expect

    for slug in stories[:3]:
        expect(read(browser_page, f"{live_app.url}/articles/{slug}")).to_have_count(0)
    assert broker.keys("prompt:reads:*") == []
