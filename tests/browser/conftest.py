"""Browser tests: the app on a live server over real HTTP, driven by headless Chromium.

`app_config` is overridden here so that BASE_URL is the live server's own address: the
app, and the worker processes started from the same configuration, put links in mails
that the browser can open.
"""
from __future__ import annotations

import pytest

from tests.support import browser as chromium


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item, so fixtures can see in teardown how the test went.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def app_config(app_config, live_server):
    return app_config | {"BASE_URL": live_server.url}


@pytest.fixture
def live_app(app, live_server):
    """The test app, served at `live_app.url` until the test ends."""
    live_server.start(app)
    yield live_server
    live_server.stop()


@pytest.fixture(scope="module")
def chromium_browser():
    reason = chromium.missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = chromium.launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium_browser, request):
    """A fresh page (no cookies); a screenshot is kept when the test fails."""
    chromium.forget_snaps(request.node.name)
    page = chromium.new_page(chromium_browser, request.node.name)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        chromium.snap(page, "failure")
    chromium.close_page(page)
