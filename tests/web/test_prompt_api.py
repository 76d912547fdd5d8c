"""GET /api/v1/prompt and POST /api/v1/prompt/events through the test client, on the test's
database and Redis; time moved with time-machine where a rule waits for days."""
from __future__ import annotations

import json
import secrets
from pathlib import Path
from datetime import timedelta

import pytest
import redis
import time_machine
from itsdangerous import URLSafeTimedSerializer

from newsletter import memberships, prompt_history
from newsletter.mailcatcher import free_port
from newsletter.models import Membership, utcnow
from newsletter.prompt_scripts import DECIDE_SCRIPT
from newsletter.web import claim_cookie, member_session, prompt_reader
from tests.factories import make_article, paragraph
from tests.support.prompts import rules_file
from tests.web.markup import parse
from tests.web.signups import SECRET_KEY, csrf_token, make_subscriber

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
RULES = {"version": "web-test", "prompts": [
    {"id": "card", "kind": "update_card", "priority": 100},
    {"id": "appeal", "kind": "membership", "priority": 50, "min_reads": 3, "snooze_days": 7,
     "frequency_cap": {"impressions": 2, "window_days": 30},
     "exclude_tags": ["sponsored"],
     "experiment": {"name": "exp", "control_share": 0,
                    "variants": [{"id": "exp:a", "copy": {"title": "Read {articles_read} stories?",
                                                          "body": ["Join for {price}."], "button": "Join"}}]}},
    {"id": "daily", "kind": "newsletter", "priority": 10, "min_reads": 1, "snooze_days": 30,
     "frequency_cap": {"impressions": 1, "window_days": 30}}]}


@pytest.fixture
def app_config(app_config, tmp_path):
    return app_config | {"PROMPT_RULES": rules_file(tmp_path, RULES)}


@pytest.fixture
def stories(session):
    made = [make_article(session, slug=f"story-{n}", body=[paragraph("A paragraph.")]) for n in range(1, 6)]
    make_article(session, slug="advertorial", tags=["Sponsored"])
    make_article(session, slug="for-members", access="members",
                 body=[paragraph("The lede everyone reads."), paragraph("The part for members.")])
    session.commit()
    return [a.slug for a in made]


def ask(client, slug: str, user_agent: str = BROWSER):
    response = client.get(f"/api/v1/prompt?article={slug}", headers={"User-Agent": user_agent})
    assert response.status_code == 200, response.data
    assert response.headers["Cache-Control"] == "private, no-store"
    return response


def event(client, name: str, variant: str, prompt: str = "membership", article: str = "story-3"):
    return client.post("/api/v1/prompt/events", headers={"User-Agent": BROWSER},
                       json={"event": name, "prompt": prompt, "variant": variant, "article": article})


def sign_in_member(client, session, status: str, email: str | None = None) -> str:
    reader = memberships.new_reader(session, email)
    session.add(Membership(reader_id=reader.id, stripe_subscription_id=f"sub_{secrets.token_hex(6)}",
                           status=status, past_due_since=utcnow() if status == "past_due" else None))
    session.commit()
    cookie = URLSafeTimedSerializer(SECRET_KEY, salt=member_session.SALT).dumps(reader.id)
    client.set_cookie(member_session.COOKIE, cookie)
    return reader.id


def test_the_appeal_after_three_stories_in_its_variant(client, stories):
    first = ask(client, stories[0])
    assert first.json["prompt"] == "newsletter" and first.json["variant"] == "daily"
    assert "rid=" in first.headers["Set-Cookie"] and "HttpOnly" in first.headers["Set-Cookie"]
    assert ask(client, stories[1]).json == {"show": False, "prompt": None, "variant": None, "html": ""}

    third = ask(client, stories[2]).json
    assert (third["show"], third["prompt"], third["variant"]) == (True, "membership", "exp:a")
    box = parse(third["html"].encode()).find("section", class_="membership-prompt")
    assert box.find("h2").text() == "Read 3 stories?"
    assert "Join for $6 a month." in box.text()
    form = box.find("form")
    assert form.attrs["action"] == "/membership/checkout"
    fields = {i.attrs["name"]: i.attrs.get("value") for i in form.find_all("input")}
    assert fields["article"] == "story-3" and fields["prompt"] == "membership" and fields["variant"] == "exp:a"
    assert fields["csrf_token"] == ""  # the slot's HTML is kept for every reader: csrf.js fetches it


def test_the_same_story_again_is_not_another_read(client, stories):
    for _ in range(4):
        ask(client, stories[0])
    assert ask(client, stories[1]).json["prompt"] != "membership"


def test_the_frequency_cap(client, stories, broker):
    for slug in stories[:2]:
        ask(client, slug)
    shown = [ask(client, slug).json["prompt"] for slug in stories[2:5]]
    assert shown == ["membership", "membership", None]
    assert prompt_history.counts(broker, "exp:a")["impressions"] == 2


def script_calls(broker) -> int:
    return int(broker.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_claims_answer_most_page_views_without_a_round_trip(app, client, stories, broker):
    app.config["PROMPT_READS_DELAY_SECONDS"] = 3600  # claimed views' reads are sent when the test says
    broker.script_load(DECIDE_SCRIPT)  # known to Redis already: one call per decision, no load
    calls = script_calls(broker)
    assert ask(client, stories[0]).json["prompt"] == "newsletter"  # the appeal is two stories away
    claim = client.get_cookie("prompt_claim")
    assert claim is not None and claim.http_only and claim.same_site == "Lax" and script_calls(broker) == calls + 1
    assert ask(client, stories[1]).json["show"] is False and script_calls(broker) == calls + 1  # from the claim
    assert client.get_cookie("prompt_claim") is None  # used up
    flush = app.extensions["newsletter.deferred_reads"].flush
    assert flush() == 1

    calls = script_calls(broker)
    appeal = ask(client, stories[2]).json
    assert appeal["variant"] == "exp:a" and "Read 3 stories?" in appeal["html"]
    assert client.get_cookie("prompt_claim") is not None  # the cap has room for one more
    again = ask(client, stories[3]).json
    assert again["variant"] == "exp:a" and "Read 4 stories?" in again["html"]
    assert script_calls(broker) == calls + 1
    # The cap is full after it: nothing for 30 days, the claim says (a claim counted in time now).
    claim, reader = client.get_cookie("prompt_claim"), client.get_cookie("rid").value
    assert 29 * 86400 < claim.max_age <= 30 * 86400 and claim.expires is None  # Max-Age alone
    assert flush() == 1 and prompt_history.counts(broker, "exp:a")["impressions"] == 2

    calls = script_calls(broker)
    assert [ask(client, slug).json["show"] for slug in (stories[4], stories[0])] == [False, False]
    assert script_calls(broker) == calls  # answered without Redis
    assert client.get_cookie("prompt_claim").value == claim.value  # nothing changed: no cookie set
    assert flush() == 2 and prompt_history.stories_read(broker, reader, utcnow(), 30) == 5  # and still counted

    calls = script_calls(broker)
    for bad in (claim.value[:-2] + "xx",  # altered
                claim.value.replace(reader, "f" * 32)):  # another reader's, re-signed by no one
        client.set_cookie("prompt_claim", bad)
        assert ask(client, stories[0]).json["show"] is False
    assert script_calls(broker) == calls + 2  # Redis asked each time, and said the same
    client.set_cookie("rid", "e" * 32)  # the claim belongs to another reader id
    client.set_cookie("prompt_claim", claim.value)
    assert ask(client, stories[0]).json["prompt"] == "newsletter" and script_calls(broker) == calls + 3


def test_a_claim_holds_a_month_at_most_and_junk_is_not_looked_at(app, client, stories, tmp_path, broker):
    app.config["PROMPT_RULES"] = rules_file(tmp_path, {"version": "long", "prompts": [
        {"id": "daily", "kind": "newsletter", "frequency_cap": {"impressions": 1, "window_days": 365}}]})
    assert ask(client, stories[0]).json["prompt"] == "newsletter"  # then nothing for a year
    claim = client.get_cookie("prompt_claim").value
    until = int(claim.split(".")[2]) / 1000
    assert until - utcnow().timestamp() <= claim_cookie.MOST_SECONDS

    known = claim_cookie._verified.cache_info().currsize
    client.set_cookie("prompt_claim", "x" * 4000)  # not a claim: not verified, not kept
    calls = script_calls(broker)
    assert ask(client, stories[1]).json["show"] is False and script_calls(broker) == calls + 1
    assert claim_cookie._verified.cache_info().currsize == known


def test_opting_out_drops_the_claim(client, stories):
    for slug in stories[:5]:
        ask(client, slug)
    assert client.get_cookie("prompt_claim") is not None
    stop = {"action": "stop", "csrf_token": csrf_token(client, "/reading-history")}
    assert client.post("/reading-history", data=stop).status_code == 303
    assert client.get_cookie("prompt_claim") is None


def test_a_dismissal_drops_the_claim_that_would_show_the_appeal_again(client, stories, broker):
    for slug in stories[:3]:
        ask(client, slug)
    assert client.get_cookie("prompt_claim") is not None  # the appeal on the next view too
    assert event(client, "dismiss", "exp:a").status_code == 204
    assert client.get_cookie("prompt_claim") is None
    assert ask(client, stories[3]).json["prompt"] is None  # Redis asked: snoozed
    assert prompt_history.counts(broker, "exp:a")["impressions"] == 1


def test_dismissal_snoozes_the_appeal_for_its_days(client, stories):
    with time_machine.travel(utcnow(), tick=False) as clock:
        for slug in stories[:3]:
            ask(client, slug)
        assert event(client, "dismiss", "exp:a").status_code == 204
        assert ask(client, stories[3]).json["prompt"] is None
        clock.shift(timedelta(days=6, hours=23))
        assert ask(client, stories[4]).json["prompt"] is None
        clock.shift(timedelta(hours=2))
        assert ask(client, stories[0]).json["prompt"] == "membership"


def test_excluded_tags_get_no_appeal(client, stories):
    for slug in stories[:2]:
        ask(client, slug)
    assert ask(client, "advertorial").json["prompt"] is None


def test_bots_are_never_counted_nor_prompted(client, stories, broker):
    for slug in stories[:4]:
        answer = ask(client, slug, GOOGLEBOT)
        assert answer.json["show"] is False and "Set-Cookie" not in answer.headers
    assert broker.keys("prompt:*") == []


def test_a_member_sees_nothing_and_reads_clean(client, session, stories):
    sign_in_member(client, session, "active")
    for slug in stories[:4]:
        assert ask(client, slug).json["show"] is False
    page = parse(client.get(f"/articles/{stories[0]}").data)
    assert not page.find_all("aside", class_="ad-slot")
    assert not page.find_all("div", class_="prompt-slot")


def test_past_due_gets_the_card_notice_and_no_ads(client, session, stories):
    sign_in_member(client, session, "past_due")
    answer = ask(client, stories[0]).json
    assert (answer["prompt"], answer["variant"]) == ("update_card", "card")
    assert parse(answer["html"].encode()).find("a", href="/account") is not None
    page = parse(client.get(f"/articles/{stories[0]}").data)
    assert not page.find_all("aside", class_="ad-slot")
    assert page.find("div", class_="prompt-slot") is not None


def test_a_signed_in_subscriber_gets_no_sign_up(client, session, stories):
    make_subscriber(session, "reader@example.com", "confirmed")
    sign_in_member(client, session, "canceled", email="reader@example.com")
    assert ask(client, stories[0]).json["prompt"] is None
    page = parse(client.get(f"/articles/{stories[0]}").data)
    assert not page.find_all("section", class_="newsletter-box")
    assert page.find_all("aside", class_="ad-slot")


def test_this_browser_is_a_subscriber_after_confirming(client, session, stories):
    from tests.web.signups import make_confirmation_token
    subscriber = make_subscriber(session, "new@example.com", "pending")
    token = make_confirmation_token(session, subscriber)
    session.commit()
    form = {"csrf_token": csrf_token(client, f"/newsletter/confirm/{token}")}
    assert client.post(f"/newsletter/confirm/{token}", data=form).status_code == 200
    assert ask(client, stories[0]).json["prompt"] is None


def test_opting_out_forgets_the_history_and_stops_counting(client, stories, broker):
    for slug in stories[:2]:
        ask(client, slug)
    assert broker.keys("prompt:reads:*")
    page = parse(client.get("/reading-history").data)
    assert "Stories counted in the last 30 days: 2" in page.text()
    response = client.post("/reading-history", data={"action": "stop", "csrf_token": csrf_token(client, "/reading-history")})
    assert response.status_code == 303
    assert broker.keys("prompt:reads:*") == [] and broker.keys("prompt:shown:*") == []
    for slug in stories:
        answer = ask(client, slug)
        assert answer.json["prompt"] is None and "Set-Cookie" not in answer.headers
    assert broker.keys("prompt:reads:*") == []


def test_where_consent_is_required_only_consenting_readers_are_counted(app, client, stories, broker):
    app.config["PROMPT_REQUIRE_CONSENT"] = True
    for slug in stories[:3]:
        assert ask(client, slug).json["show"] is False
    assert broker.keys("prompt:reads:*") == []
    client.set_cookie("reading_consent", "granted")
    assert [ask(client, slug).json["prompt"] for slug in stories[:3]] == ["newsletter", None, "membership"]


def test_events_must_be_the_readers_own(client, stories, broker):
    ask(client, stories[0])
    assert event(client, "seen", "daily", prompt="newsletter").status_code == 204
    assert event(client, "click", "exp:nope").status_code == 422
    assert event(client, "explode", "daily", prompt="newsletter").status_code == 422
    bad = client.post("/api/v1/prompt/events", data="{", content_type="application/json")
    assert bad.status_code == 400
    counted = prompt_history.counts(broker, "daily")
    assert (counted["seen"], counted["seen_readers"], counted["click"]) == (1, 1, 0)


def test_unknown_article(client, stories):
    assert client.get("/api/v1/prompt?article=nope").status_code == 404


def test_the_kill_switch(app, client, stories, tmp_path):
    app.config["PROMPT_RULES"] = rules_file(tmp_path, RULES | {"version": "off", "enabled": False}, "off.json")
    assert [ask(client, slug).json["show"] for slug in stories[:4]] == [False] * 4



def test_rules_that_cannot_be_read_leave_the_last_good_ones_in_force(app, client, stories, caplog):
    """A bad edit on disk (not JSON, another encoding, gone) never breaks a reader's page."""
    assert ask(client, stories[0]).json["prompt"] == "newsletter"
    Path(app.config["PROMPT_RULES"]).write_text("{ broken")
    app.extensions["newsletter.prompt_rules"] = (0, app.extensions["newsletter.prompt_rules"][1])  # the second passed
    another_reader = app.test_client()
    assert ask(another_reader, stories[0]).json["prompt"] == "newsletter"
    assert "not used" in caplog.text and "web-test stays in force" in caplog.text


def test_with_no_readable_rules_ever_no_prompt_is_shown(app, client, stories, tmp_path):
    app.config["PROMPT_RULES"] = str(tmp_path / "missing.json")
    assert [ask(client, slug).json["show"] for slug in stories[:4]] == [False] * 4


# ---------------------------------------------------------------- the article page

def test_the_page_is_alike_for_every_anonymous_reader(client, stories):
    response = client.get(f"/articles/{stories[0]}", headers={"User-Agent": BROWSER})
    assert "rid=" not in response.headers.get("Set-Cookie", "")
    slot = parse(response.data).find("div", class_="prompt-slot")
    assert slot.attrs["data-prompt-src"] == f"/api/v1/prompt?article={stories[0]}"
    assert slot.elements == []
    scripts = [s.attrs.get("src", "") for s in parse(response.data).find_all("script")]
    assert any(src.startswith("/assets/prompt.js?v=") for src in scripts)


def test_page_delivery_decides_in_the_page(app, client, stories):
    app.config["PROMPT_DELIVERY"] = "page"
    pages = [client.get(f"/articles/{slug}", headers={"User-Agent": BROWSER}) for slug in stories[:3]]
    assert "rid=" in pages[0].headers["Set-Cookie"]
    assert pages[2].headers["Cache-Control"] == "private, no-cache"
    slot = parse(pages[2].data).find("div", class_="prompt-slot")
    assert "data-prompt-src" not in slot.attrs
    assert slot.find("section", class_="membership-prompt").attrs["data-variant"] == "exp:a"


def test_a_members_only_story_shows_non_members_its_lede_and_the_appeal(client, stories):
    response = client.get("/articles/for-members")
    assert b"The part for members." not in response.data
    page = parse(response.data)
    assert "The lede everyone reads." in page.find("div", class_="article__body").text()
    gate = page.find("div", class_="article__members-only")
    form = gate.find("section", class_="membership-prompt").find("form")
    assert form.find("input", name="prompt").attrs["value"] == "gate"
    ld = json.loads(page.find("script", type="application/ld+json").text())
    assert ld["isAccessibleForFree"] is False
    assert ld["hasPart"] == {"@type": "WebPageElement", "isAccessibleForFree": False,
                             "cssSelector": ".article__members-only"}


def test_a_member_reads_the_whole_members_only_story(client, session, stories):
    sign_in_member(client, session, "active")
    page = parse(client.get("/articles/for-members").data)
    part = page.find("div", class_="article__members-only")
    assert part.find_all("p")[0].text() == "The part for members."
    assert not page.find_all("section", class_="membership-prompt")


def test_front_matter_access_members_gates_the_ingested_story(runner, client, tmp_path):
    seed = tmp_path / "gated.txt"
    seed.write_text("---\nheadline: A members story\naccess: members\n---\n"
                    "The lede of the story.\nWhat only members read.\n", encoding="utf-8")
    result = runner.invoke(args=["ingest", str(seed)])
    assert result.exit_code == 0, result.output
    html = client.get(f"/articles/{result.output.strip()}").get_data(as_text=True)
    assert "The lede of the story." in html and "What only members read." not in html


def test_the_report_for_the_console_needs_an_operator(app, client, stories):
    from tests.support.console import bearer

    for slug in stories[:3]:
        ask(client, slug)
    assert client.get("/api/v1/prompts/report").status_code == 401
    response = client.get("/api/v1/prompts/report", headers=bearer(app))
    assert response.status_code == 200
    rows = {row["variant"]: row for row in response.json["variants"]}
    assert response.json["rules_version"] == "web-test"
    assert rows["exp:a"]["readers"] == 1 and rows["exp:a"]["impressions"] == 1
    assert rows["daily"]["impressions"] == 1


def test_the_report_without_redis_is_a_503_that_says_so(app, client):
    from tests.support.console import bearer

    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.get("/api/v1/prompts/report", headers=bearer(app))

    assert response.status_code == 503
    assert "Redis did not answer" in response.json["error"]["message"]


def test_the_article_api_shows_non_members_the_lede_only(client, stories):
    preview = client.get("/api/v1/articles/for-members")
    assert preview.json["paragraphs"] == ["The lede everyone reads."] and preview.json["access"] == "members"
    assert b"The part for members." not in preview.data
    assert preview.headers["Cache-Control"] == "private, no-cache"  # a member asking gets more
    assert client.get(f"/api/v1/articles/{stories[0]}").headers["Cache-Control"] == "public, max-age=60"


def test_the_article_api_gives_members_the_whole_story(client, session, stories):
    sign_in_member(client, session, "past_due")  # in the grace period: still a member's reading
    whole = client.get("/api/v1/articles/for-members")
    assert whole.json["paragraphs"] == ["The lede everyone reads.", "The part for members."]
    assert whole.headers["Cache-Control"] == "private, no-cache"


def test_without_an_answering_redis_the_slot_is_empty_and_pages_still_answer(app, client, stories):
    nobody_listens = free_port()  # a loopback port with no server on it
    app.extensions["newsletter.prompt_redis"] = redis.Redis(port=nobody_listens, socket_timeout=0.5,
                                                            socket_connect_timeout=0.5)
    assert ask(client, stories[0]).json == {"show": False, "prompt": None, "variant": None, "html": ""}
    assert client.get(f"/articles/{stories[0]}").status_code == 200
    assert event(client, "seen", "daily", prompt="newsletter").status_code == 204


def test_an_event_from_a_form_on_another_site_is_refused(client, stories, broker):
    # A form may post text/plain, with the reader's cookies; a count needs JSON, which it cannot send.
    ask(client, stories[0])
    body = '{"event": "seen", "prompt": "newsletter", "variant": "daily", "x": "="}'
    response = client.post("/api/v1/prompt/events", data=body, content_type="text/plain",
                           headers={"User-Agent": BROWSER})
    assert response.status_code == 415 and "JSON" in response.json["error"]["message"]
    assert prompt_history.counts(broker, "daily")["seen"] == 0


def test_events_of_a_prompt_never_given_the_reader_are_not_counted(client, stories, broker):
    ask(client, stories[0])  # one story: the sign-up box, not yet the appeal (3 stories)
    for _ in range(5):
        assert event(client, "click", "exp:a").status_code == 204
    assert event(client, "dismiss", "exp:a").status_code == 204
    assert prompt_history.counts(broker, "exp:a")["click"] == 0
    assert broker.keys("prompt:snooze:*") == []  # nor snoozed


def test_readers_not_counted_send_no_events_into_an_experiment(app, client, stories, broker):
    app.config["PROMPT_REQUIRE_CONSENT"] = True  # and this browser gave none
    assert event(client, "click", "exp:a").status_code == 204
    assert event(client, "seen", "card", prompt="update_card").status_code == 204
    assert prompt_history.counts(broker, "exp:a")["click"] == 0
    assert prompt_history.counts(broker, "card")["seen"] == 1  # no experiment, no history: counted


def test_when_redis_refuses_the_slot_is_empty_and_pages_still_answer(app, client, stories, broker, caplog):
    # Out of memory, read-only after a failover, a key of another type: an error reply, not a lost link.
    reader = "f" * 32
    client.set_cookie("rid", reader)
    broker.set(f"prompt:reads:{reader}", "not a sorted set")
    broker.set("prompt:stats:daily", "not a hash")
    assert ask(client, stories[0]).json == {"show": False, "prompt": None, "variant": None, "html": ""}
    app.config["PROMPT_DELIVERY"] = "page"
    assert client.get(f"/articles/{stories[0]}", headers={"User-Agent": BROWSER}).status_code == 200
    assert event(client, "seen", "daily", prompt="newsletter").status_code == 204
    assert "WRONGTYPE" in caplog.text


def test_opting_out_while_redis_is_away_stops_counting_and_offers_to_delete_later(app, client, stories, broker):
    reader = "e" * 32
    client.set_cookie("rid", reader)
    ask(client, stories[0])
    working = app.extensions["newsletter.prompt_redis"]
    app.extensions["newsletter.prompt_redis"] = redis.Redis(port=free_port(), socket_timeout=0.5,
                                                            socket_connect_timeout=0.5)
    assert "The count cannot be read just now" in parse(client.get("/reading-history").data).text()

    stop = {"action": "stop", "csrf_token": csrf_token(client, "/reading-history")}
    assert client.post("/reading-history", data=stop).status_code == 303
    page = parse(client.get("/reading-history").data)
    assert "could not be deleted just now" in page.find(role="alert").text()
    assert client.get_cookie("no_reading_history") is not None and client.get_cookie("rid") is not None

    app.extensions["newsletter.prompt_redis"] = working
    assert ask(client, stories[1]).json["show"] is False  # not counted meanwhile
    assert broker.zcard(f"prompt:reads:{reader}") == 1
    stop["csrf_token"] = csrf_token(client, "/reading-history")
    assert client.post("/reading-history", data=stop).status_code == 303
    # Deleted, but for the minute's mark that keeps a read queued before from counting it again.
    assert broker.keys(f"prompt:*{reader}*") == [f"prompt:forgotten:{reader}".encode()]
    assert client.get_cookie("rid") is None
    assert "could not be deleted" not in parse(client.get("/reading-history").data).text()
