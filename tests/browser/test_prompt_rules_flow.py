"""The rules editor in headless Chromium: an operator changes the appeal's title and a reader's
next story shows it; the kill switch empties the reader's slot; broken JSON is refused with
the text kept. Real parts: the app on a live server, the test's database and Redis, two
pages (the operator's and the reader's, no cookies shared)."""
from __future__ import annotations

import pytest

from newsletter import db
from newsletter import prompt_rules_edit as edit
from newsletter.models import utcnow
from tests.factories import make_article
from tests.support import browser as chromium
from tests.support.browser import snap
from tests.support.console import make_operator, sign_in_page
from tests.support.prompts import rules_file

pytestmark = pytest.mark.slow

DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
RULES = {"version": "desk-1", "prompts": [
    {"id": "appeal", "kind": "membership",
     "experiment": {"name": "exp", "control_share": 0, "variants": [
         {"id": "exp:a", "copy": {"title": "Before the edit", "body": ["Join for {price}."], "button": "Join"}}]}}]}


@pytest.fixture
def app_config(app_config, tmp_path):
    return app_config | {"PROMPT_RULES": rules_file(tmp_path, RULES)}


@pytest.fixture
def story(app):
    make_operator(app)
    with app.app_context():
        session = db.session()
        make_article(session, slug="harbour", headline="Harbour reopens")
        session.commit()
    return "harbour"


@pytest.fixture
def reader(chromium_browser, request):
    page = chromium.new_page(chromium_browser, request.node.name + "-reader")
    page.set_extra_http_headers({"User-Agent": DESKTOP})
    yield page
    chromium.close_page(page)


def appeal_title(page, url: str) -> str | None:
    """The appeal's title on the story at `url`, once prompt.js has filled the slot (None: empty)."""
    page.goto(url)
    page.locator("[data-prompt-slot][data-prompt-ready]").wait_for(state="attached")
    title = page.locator("[data-prompt-slot] .membership-prompt h2")
    return title.inner_text() if title.count() else None


def open_rules_page(desk, site: str) -> None:
    """The console's rules page in `desk`, signed in through the sign-in page it leads to."""
    desk.goto(f"{site}/operator/prompts/rules")
    sign_in_page(desk)
    desk.wait_for_url("**/operator/prompts/rules")


def until(page, url: str, expected) -> str | None:
    """The title, read again until it is `expected`: every process looks at the rules once a second."""
    for _ in range(30):
        title = appeal_title(page, url)
        if title == expected:
            return title
        page.wait_for_timeout(200)
    return title


def test_edit_switch_off_and_a_refused_save(live_app, browser_page, reader, story):
    from playwright.sync_api import expect

    url = f"{live_app.url}/articles/{story}"
    assert appeal_title(reader, url) == "Before the edit"

    desk = browser_page
    open_rules_page(desk, live_app.url)
    editor = desk.get_by_label("The rules as JSON")
    editor.fill(editor.input_value().replace("Before the edit", "After the edit"))
    snap(desk, "1-editing")
    desk.get_by_role("button", name="Check and save").click()
    expect(desk.get_by_role("status")).to_contain_text("Saved as version")
    assert until(reader, url, "After the edit") == "After the edit"
    snap(reader, "2-reader-sees-the-edit")

    desk.get_by_role("button", name="Switch every prompt off").click()
    expect(desk.get_by_role("status")).to_contain_text("Every prompt is switched off.")
    expect(desk.get_by_role("button", name="Switch the prompts back on")).to_be_visible()
    assert until(reader, url, None) is None
    snap(desk, "3-switched-off")

    broken = editor.input_value().replace('"prompts": [', '"prompts": [,', 1)
    editor.fill(broken)
    desk.get_by_role("button", name="Check and save").click()
    expect(desk.get_by_role("alert")).to_contain_text("Not saved: the rules are not valid: not JSON")
    assert desk.get_by_label("The rules as JSON").input_value() == broken
    snap(desk, "4-refused")
    assert until(reader, url, None) is None


def test_text_typed_before_the_session_ended_is_kept_until_saved(app, live_app, browser_page, story):
    from playwright.sync_api import expect

    desk = browser_page
    problems = []
    desk.on("pageerror", lambda e: problems.append(str(e)))
    open_rules_page(desk, live_app.url)
    editor = desk.get_by_label("The rules as JSON")
    typed = editor.input_value().replace("Before the edit", "Typed before the session ended")
    editor.fill(typed)

    desk.context.clear_cookies()  # the console session ends (and the form's token with it)
    desk.get_by_role("button", name="Check and save").click()
    desk.wait_for_url("**/operator/login?next=/operator/prompts/rules")
    # Meanwhile a colleague saves: the kept text was typed on the rules before theirs, and the
    # editor the sign-in leads back to is made from theirs.
    with app.app_context():
        edit.switch(app.config, False, edit.current(app.config).fingerprint, "bo@example.org", utcnow())
    sign_in_page(desk)
    desk.wait_for_url("**/operator/prompts/rules")

    notice = desk.locator("[data-draft-notice]")
    expect(notice).to_be_visible()
    assert "Before the edit" in editor.input_value()
    snap(desk, "1-draft-offered")
    notice.get_by_role("button", name="Put my text back in the editor").click()
    assert editor.input_value() == typed
    desk.get_by_role("button", name="Check and save").click()
    expect(desk.get_by_role("alert")).to_contain_text("the rules were changed since")
    assert desk.get_by_label("The rules as JSON").input_value() == typed
    snap(desk, "2-refused-colleague-saved")
    desk.get_by_role("button", name="Check and save").click()  # saved knowingly over theirs
    expect(desk.get_by_role("status").first).to_contain_text("Saved as version")
    assert "Typed before the session ended" in editor.input_value()
    desk.reload()
    expect(notice).to_be_hidden()
    assert problems == []


def test_the_desk_edits_one_prompt_in_its_form(live_app, browser_page, reader, story):
    from playwright.sync_api import expect

    url = f"{live_app.url}/articles/{story}"
    assert appeal_title(reader, url) == "Before the edit"
    desk = browser_page
    open_rules_page(desk, live_app.url)
    desk.get_by_role("link", name="appeal", exact=True).click()
    desk.wait_for_url("**/operator/prompts/rules/prompts/appeal")

    desk.get_by_label("Title").fill("Edited in the form")
    desk.get_by_label("Never on these sections (one per line)").fill("Weather\nSport")
    snap(desk, "1-form")
    desk.get_by_role("button", name="Check and save").click()
    expect(desk.get_by_role("status")).to_contain_text("Saved as version")
    expect(desk.get_by_label("Never on these sections (one per line)")).to_have_value("Weather\nSport")
    assert until(reader, url, "Edited in the form") == "Edited in the form"
    snap(reader, "2-reader-sees-the-edit")

    desk.get_by_label("Stories read before it shows").fill("three")
    desk.get_by_role("button", name="Check and save").click()
    expect(desk.get_by_role("alert")).to_contain_text("Stories read before it shows: a whole number")
    expect(desk.get_by_label("Stories read before it shows")).to_have_value("three")
    expect(desk.get_by_label("Title")).to_have_value("Edited in the form")
    snap(desk, "3-refused")
