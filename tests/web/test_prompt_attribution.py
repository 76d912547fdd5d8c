"""Attribution end to end: a reader's appeal, its click (or the reader's assigned bucket,
for a checkout that names no variant), the checkout at the Stripe sandbox, the webhook,
and the conversion counted for the bucket.

Real HTTP throughout: our app on a live server, the sandbox's hosted checkout page, webhooks
from the sandbox to the app; the tasks they queue run as a worker would (`run_queued`).
"""
from __future__ import annotations

import pytest
import redis
import requests
from sqlalchemy import select

from newsletter import db, prompt_report, prompts
from newsletter.mailcatcher import free_port
from newsletter.models import Membership
from newsletter.prompt_rules import load_rules, parse_rules
from newsletter.redis_url import client as redis_client
from tests.conftest import open_shop, stripe_settings
from tests.factories import make_article, paragraph
from tests.support.membership import follow, form_of, pay, start_checkout, submit
from tests.support.prompts import rules_file
from tests.web.markup import parse
from tests.web.signups import run_queued  # noqa: F401  (fixture)

DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
RULES = {"version": "attribution", "prompts": [
    {"id": "appeal", "kind": "membership", "min_reads": 3,
     "experiment": {"name": "attr", "control_share": 0,
                    "variants": [{"id": "attr:only", "copy": {"button": "Join us"}}]}}]}
# Half the readers held out; tests pick a reader id in the bucket they need (reader_in).
SPLIT = {"version": "split", "prompts": [
    {"id": "appeal", "kind": "membership", "min_reads": 3,
     "experiment": {"name": "split", "control_share": 0.5, "variants": [{"id": "split:a"}]}}]}


@pytest.fixture
def rules():
    """The rules file's content; a test parametrizes `rules` for others."""
    return RULES


@pytest.fixture
def app_config(app_config, live_server, stripe_sandbox, tmp_path, rules):
    return (app_config | {"BASE_URL": live_server.url, "PROMPT_RULES": rules_file(tmp_path, rules)}
            | stripe_settings(stripe_sandbox))


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
        row = db.session().scalars(select(Membership)).one()
        assert (row.prompt, row.prompt_variant, row.source_article, row.prompt_path) == \
            ("membership", "attr:only", "story-3", "click")
    rows = report_rows(app, redis_url)
    only = rows["attr:only"]
    assert (only.readers, only.impressions, only.clicks, only.conversions, only.rate) == (1, 1, 1, 1, 1.0)
    assert only.clicks_converted == 1
    assert rows["attr:control"].conversions == 0


@pytest.mark.parametrize("rules", [SPLIT])
def test_a_control_reader_who_joins_from_the_join_page_converts_for_the_control(app, site, stripe_sandbox, browser,
                                                                                run_queued, redis_url):
    reader = reader_in(SPLIT, control=True)
    browser.cookies.set("rid", reader)
    answers = [browser.get(f"{site.url}/api/v1/prompt", params={"article": f"story-{n}"}).json()
               for n in range(1, 4)]
    assert [a["show"] for a in answers] == [False, False, False]  # held out: shown nothing, on purpose

    welcome = pay(browser, start_checkout(browser, site.url), "held.out@example.com")
    assert welcome.status_code == 200
    stripe_sandbox.wait_for_deliveries()
    run_queued()

    with app.app_context():
        row = db.session().scalars(select(Membership)).one()
        assert (row.prompt, row.prompt_variant, row.prompt_path) == ("membership", "split:control", "assigned")
    rows = report_rows(app, redis_url)
    control = rows["split:control"]
    assert (control.readers, control.impressions, control.conversions, control.clicks_converted) == (1, 0, 1, 0)
    assert control.rate == 1.0 and rows["split:a"].conversions == 0


# ---------------------------------------------------------------- the checkout's metadata, by path

@pytest.mark.parametrize("rules", [SPLIT])
def test_a_checkout_naming_a_variant_is_a_click_even_for_a_control_reader(site, stripe_sandbox, browser):
    assigned_reader(site, browser, control=True)
    metadata = checkout_metadata(stripe_sandbox, join(browser, site, prompt="membership", variant="split:a",
                                                      article="story-3"))
    assert (metadata["prompt_variant"], metadata["prompt_path"]) == ("split:a", "click")


@pytest.mark.parametrize("rules", [SPLIT])
@pytest.mark.parametrize("control, bucket", [(True, "split:control"), (False, "split:a")])
def test_a_checkout_naming_no_variant_goes_to_the_readers_bucket(site, stripe_sandbox, browser, control, bucket):
    assigned_reader(site, browser, control)
    metadata = checkout_metadata(stripe_sandbox, join(browser, site))
    assert (metadata["prompt"], metadata["prompt_variant"], metadata["prompt_path"]) == \
        ("membership", bucket, "assigned")


@pytest.mark.parametrize("rules", [SPLIT])
def test_a_reader_who_opted_out_is_in_no_bucket_though_its_id_stayed(site, stripe_sandbox, browser):
    # The id stays when Redis could not forget the history at the opt-out (or consent was withdrawn).
    assigned_reader(site, browser, control=False)
    browser.cookies.set("no_reading_history", "1")
    metadata = checkout_metadata(stripe_sandbox, join(browser, site))
    assert "prompt_variant" not in metadata and "prompt_path" not in metadata
    clicked = checkout_metadata(stripe_sandbox, join(browser, site, prompt="membership", variant="split:a"))
    assert (clicked["prompt_variant"], clicked["prompt_path"]) == ("split:a", "uncounted")


@pytest.mark.parametrize("rid", [None, "../../not-a-reader-id", "F" * 32, "0" * 32],
                         ids=["no cookie", "forged", "not lower-case hex", "never assigned"])
def test_without_an_assigned_reader_the_checkout_names_no_bucket(site, stripe_sandbox, browser, rid):
    if rid is not None:
        browser.cookies.set("rid", rid)
    metadata = checkout_metadata(stripe_sandbox, join(browser, site))
    assert "prompt_variant" not in metadata and "prompt_path" not in metadata


def test_when_redis_does_not_answer_the_checkout_still_goes_on(app, site, stripe_sandbox, browser, caplog):
    assigned_reader(site, browser, control=False)
    app.extensions["newsletter.prompt_redis"] = redis.Redis(port=free_port(), socket_timeout=0.5,
                                                            socket_connect_timeout=0.5)
    metadata = checkout_metadata(stripe_sandbox, join(browser, site))
    assert "prompt_variant" not in metadata
    assert "Redis did not answer" in caplog.text


def reader_in(rules: dict, control: bool) -> str:
    """The first of a fixed line of reader ids whose bucket of the rules' first prompt is (or is
    not) the control: the experiment's hash decides, so the test chooses the reader."""
    experiment = parse_rules(rules).prompts[0].experiment
    return next(reader for reader in (f"{n:032x}" for n in range(100))
                if (prompts.bucket(experiment, reader) is None) == control)


def assigned_reader(site, browser: requests.Session, control: bool) -> None:
    """A browser whose reader read three stories and was assigned its bucket of SPLIT."""
    browser.cookies.set("rid", reader_in(SPLIT, control))
    for n in range(1, 4):
        browser.get(f"{site.url}/api/v1/prompt", params={"article": f"story-{n}"})


def join(browser: requests.Session, site, **fields) -> requests.Response:
    """Press Join on the join page (or post `fields` instead of its own); the 303 to the hosted page."""
    response = submit(browser, browser.get(f"{site.url}/membership"), fields)
    assert response.status_code == 303, response.text[:300]
    return response


def checkout_metadata(sandbox, response: requests.Response) -> dict:
    """The metadata of the checkout session `response` sends the reader to (its subscription's too)."""
    session_id = response.headers["Location"].rsplit("/", 1)[1]
    return sandbox.get(session_id)["metadata"]


def report_rows(app, redis_url: str) -> dict:
    with app.app_context():
        store = redis_client(redis_url)
        try:
            rows = prompt_report.report(db.session(), store, load_rules(app.config["PROMPT_RULES"]))
        finally:
            store.close()
    return {row.variant: row for row in rows}


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
