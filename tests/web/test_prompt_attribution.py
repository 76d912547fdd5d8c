"""Attribution end to end: a reader's appeal, its click, the checkout at the Stripe sandbox,
the webhook, and the conversion counted for the variant that led there.

Real HTTP throughout: our app on a live server, the sandbox's hosted checkout page, webhooks
from the sandbox to the app; the tasks they queue run as a worker would (`run_queued`).
"""
from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import select

from newsletter import db, prompt_report
from newsletter.models import Membership
from newsletter.prompt_rules import load_rules
from newsletter.redis_url import client as redis_client
from tests.conftest import open_shop, stripe_settings
from tests.factories import make_article, paragraph
from tests.support.membership import follow, form_of, pay, submit
from tests.web.markup import parse
from tests.web.signups import run_queued  # noqa: F401  (fixture)

DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
RULES = {"version": "attribution", "prompts": [
    {"id": "appeal", "kind": "membership", "min_reads": 3,
     "experiment": {"name": "attr", "control_share": 0,
                    "variants": [{"id": "attr:only", "copy": {"button": "Join us"}}]}}]}


@pytest.fixture
def app_config(app_config, live_server, stripe_sandbox, tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(RULES))
    return app_config | {"BASE_URL": live_server.url, "PROMPT_RULES": str(path)} | stripe_settings(stripe_sandbox)


@pytest.fixture
def site(app, runner, live_server, stripe_sandbox):
    with app.app_context():
        session = db.session()
        for n in range(1, 4):
            make_article(session, slug=f"story-{n}", body=[paragraph("A paragraph.")])
        session.commit()
    open_shop(app, runner, live_server, stripe_sandbox)
    yield live_server
    live_server.stop()


@pytest.fixture
def browser():
    with requests.Session() as session:
        session.headers["User-Agent"] = DESKTOP  # python-requests' own is a bot's
        yield session


def test_a_click_through_checkout_is_a_conversion_of_its_variant(app, site, stripe_sandbox, browser, run_queued,
                                                                   redis_url):
    answers = [browser.get(f"{site.url}/api/v1/prompt", params={"article": f"story-{n}"}).json()
               for n in range(1, 4)]
    assert [a["show"] for a in answers] == [False, False, True]
    appeal = answers[2]
    assert appeal["variant"] == "attr:only"
    clicked = browser.post(f"{site.url}/api/v1/prompt/events",
                           json={"event": "click", "prompt": "membership", "variant": "attr:only", "article": "story-3"})
    assert clicked.status_code == 204

    checkout = follow(browser, submit_appeal(browser, site.url, appeal["html"]))
    assert checkout.url.startswith(stripe_sandbox.url)
    welcome = pay(browser, checkout, "convert@example.com")
    assert welcome.status_code == 200
    stripe_sandbox.wait_for_deliveries()
    run_queued()

    with app.app_context():
        session = db.session()
        row = session.scalars(select(Membership)).one()
        assert (row.prompt, row.prompt_variant, row.source_article) == ("membership", "attr:only", "story-3")
        store = redis_client(redis_url)
        try:
            report = prompt_report.report(session, store, load_rules(app.config["PROMPT_RULES"]))
        finally:
            store.close()
    rows = {row.variant: row for row in report}
    only = rows["attr:only"]
    assert (only.readers, only.impressions, only.clicks, only.conversions, only.rate) == (1, 1, 1, 1, 1.0)
    assert rows["attr:control"].conversions == 0


def test_without_javascript_the_appeal_comes_back_once_and_still_attributes(app, site, stripe_sandbox, browser,
                                                                            run_queued):
    for n in range(1, 4):
        appeal = browser.get(f"{site.url}/api/v1/prompt", params={"article": f"story-{n}"}).json()

    refused = submit_appeal(browser, site.url, appeal["html"], javascript=False)
    assert refused.status_code == 400 and "could not verify the form" in refused.text
    again = {i.attrs["name"]: i.attrs.get("value", "") for i in form_of(refused.text).find_all("input")}
    assert (again["prompt"], again["variant"], again["article"]) == ("membership", "attr:only", "story-3")
    assert again["csrf_token"]
    checkout = follow(browser, submit(browser, refused))
    pay(browser, checkout, "nojs@example.com")
    stripe_sandbox.wait_for_deliveries()
    run_queued()

    with app.app_context():
        row = db.session().scalars(select(Membership)).one()
    assert (row.prompt, row.prompt_variant, row.source_article) == ("membership", "attr:only", "story-3")


def submit_appeal(browser: requests.Session, site_url: str, html: str, javascript: bool = True) -> requests.Response:
    """Press the appeal's button: its form's fields, as a browser posts them (with JavaScript,
    csrf.js fetches the token the kept HTML leaves out)."""
    form = parse(html.encode()).find("form")
    fields = {i.attrs["name"]: i.attrs.get("value", "") for i in form.find_all("input")}
    if javascript:
        fields["csrf_token"] = browser.get(f"{site_url}/api/v1/csrf").json()["csrf_token"]
    response = browser.post(site_url + form.attrs["action"], data=fields, allow_redirects=False)
    assert response.status_code == (303 if javascript else 400), response.text[:300]
    return response
