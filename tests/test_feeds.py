"""RSS and Atom: reading entries, sanitising their HTML, fetching feed URLs, queuing fetches."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter import articles, feeds
from newsletter.models import Article, FeedFetch
from newsletter.queue import celery_app
from newsletter.redis_url import client as redis_client
from tests.support.feedserver import FeedServer, closed_port

FIXTURES = Path(__file__).parent / "fixtures"
RSS = (FIXTURES / "feed.rss").read_bytes()
ATOM = (FIXTURES / "feed.atom").read_bytes()
BROKEN = (FIXTURES / "broken.xml").read_bytes()


@pytest.fixture
def feed_server():
    server = FeedServer()
    yield server
    server.stop()


def article_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Article))


def queued_messages(app) -> int:
    redis = redis_client(app.config["REDIS_URL"])
    try:
        return redis.llen("celery")
    finally:
        redis.close()


# ---------------------------------------------------------------- reading feeds

def test_rss_entries_become_articles(session):
    result = feeds.ingest_feed(session, RSS)
    assert result.slugs == ["council-approves-the-harbour-plan", "ferry-timetable-changes-what-they-mean"]
    assert result.errors == ["http://newsroom.test/2025/11/empty: no story paragraphs (empty, or only promotional text)"]
    harbour = articles.get(session, result.slugs[0])
    assert (harbour.byline, harbour.tags, harbour.url) == ("Dana Levi", ["Local", "Harbour"],
                                                           "http://newsroom.test/2025/11/harbour-plan")
    assert harbour.source_key == "newsroom-test-1001"
    assert harbour.published_at == datetime(2025, 11, 11, 9, 30, tzinfo=timezone.utc)
    assert harbour.notes == ["Agencies contributed to this report."]
    assert articles.images(harbour) == [{"caption": "The harbour at dawn, November 10, 2025.",
                                         "credit": "Noa Cohen/Newsroom"}]


def test_rss_html_is_sanitised_into_plain_paragraphs(session):
    harbour = articles.get(session, feeds.ingest_feed(session, RSS).slugs[0])
    assert articles.paragraphs(harbour) == [
        "The city council approved the harbour plan on Monday, after a debate that ran past midnight.",
        "The mayor called it “a new start” for the waterfront.",
        "Residents wrote <script> tags in the comment form to test it.",
        "Work starts in the spring.",
        "It should end in 2027.",
    ]
    everything = json.dumps(articles.as_json(harbour), ensure_ascii=False)
    assert "stolen cookies" not in everything and "onclick" not in everything
    assert "Sign up for our newsletter" not in everything and "agree to the terms" not in everything


def test_img_alt_with_a_credit_is_a_caption(session):
    ferry = articles.get(session, feeds.ingest_feed(session, RSS).slugs[1])
    assert ferry.headline == "Ferry timetable changes & what they mean"
    assert [b["type"] for b in ferry.body] == ["paragraph", "image", "paragraph"]
    assert articles.images(ferry) == [{"caption": "A ferry leaves the pier.", "credit": "Ayal Margolin/Flash90"}]


def test_atom_entries_become_articles(session):
    result = feeds.ingest_feed(session, ATOM)
    assert result.errors == []
    storm, museum = (articles.get(session, slug) for slug in result.slugs)
    assert storm.headline == "Storm closes the coast road" and storm.byline == "Yossi Mizrahi"
    assert storm.published_at == datetime(2025, 11, 12, 4, 15, tzinfo=timezone.utc)
    assert articles.paragraphs(storm) == ["The coast road was closed on Wednesday as the storm reached land.",
                                          "Police asked drivers to stay home."]
    assert articles.images(storm) == [{"caption": "Waves hit the promenade.", "credit": "Reuters"}]
    assert "document.write" not in json.dumps(storm.body)
    assert articles.paragraphs(museum) == ["The museum reopened after two years.", "Entry is free on Fridays."]
    assert museum.published_at == datetime(2025, 11, 11, 12, tzinfo=timezone.utc)


def test_ingesting_a_feed_again_updates_the_same_articles(session):
    first = feeds.ingest_feed(session, RSS).slugs
    session.commit()
    assert feeds.ingest_feed(session, RSS).slugs == first
    assert article_count(session) == 2


def test_entry_without_id_or_link_is_an_error_and_others_still_count(session):
    data = b"""<rss version="2.0"><channel><title>t</title>
      <item><title>Nameless</title><description>Text.</description></item>
      <item><title>Named</title><guid>n-1</guid><description>Text too.</description></item>
    </channel></rss>"""
    result = feeds.ingest_feed(session, data)
    assert result.slugs == ["named"] and result.errors == ["Nameless: entry has neither an id nor a link"]


@pytest.mark.parametrize("title, author, guid", [
    ("Bad\x00 title", "Reporter", "b-1"), ("Bad", "Re&#0;porter", "b-1"), ("Bad", "Reporter", "b&#x0;-1"),
])
def test_an_entry_with_a_nul_is_an_error_and_others_still_count(session, title, author, guid):
    # PostgreSQL refuses NUL in text: the entry stopped the whole feed (a DataError, a failed
    # fetch task, a traceback from `newsletter ingest`). (In an HTML body nh3 drops it.)
    data = f"""<rss version="2.0"><channel><title>t</title>
      <item><title>{title}</title><author>{author}</author><guid>{guid}</guid><description>Text.</description></item>
      <item><title>Named</title><guid>n-1</guid><description>Text too.</description></item>
    </channel></rss>""".encode()
    result = feeds.ingest_feed(session, data)
    session.commit()
    assert result.slugs == ["named"] and len(result.errors) == 1 and "NUL" in result.errors[0]


@pytest.mark.parametrize("data, message", [
    (BROKEN, "not a readable RSS or Atom feed"),
    (b"", "not an RSS or Atom feed"),
    (b"<html><body><p>A web page</p></body></html>", "not an RSS or Atom feed"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a"),
])
def test_broken_feeds_raise_one_line(data, message):
    with pytest.raises(feeds.FeedError, match=message) as caught:
        feeds.feed_entries(data)
    assert "\n" not in str(caught.value)


def test_feed_urls_from_configuration():
    assert feeds.feed_urls(["http://a/", " "]) == ["http://a/"]
    assert feeds.feed_urls('["http://a/", "http://b/"]') == ["http://a/", "http://b/"]
    assert feeds.feed_urls("http://a/, http://b/ http://c/") == ["http://a/", "http://b/", "http://c/"]
    assert feeds.feed_urls(None) == [] and feeds.feed_urls("") == []


# ---------------------------------------------------------------- fetching URLs

def fetch_row(session, url: str) -> FeedFetch:
    row = FeedFetch(url=url, state="queued", slugs=[], errors=[])
    session.add(row)
    session.commit()
    return row


def test_run_fetch_ingests_the_feed(session, feed_server):
    row = fetch_row(session, feed_server.route("/feed", RSS))
    fetch = feeds.run_fetch(session, row.id)
    session.commit()
    assert fetch.state == "done" and fetch.finished_at is not None
    assert fetch.slugs == ["council-approves-the-harbour-plan", "ferry-timetable-changes-what-they-mean"]
    assert len(fetch.errors) == 1 and "no story paragraphs" in fetch.errors[0]


def test_run_fetch_twice_is_harmless(session, feed_server):
    row = fetch_row(session, feed_server.route("/feed", ATOM, headers={"Content-Type": "application/atom+xml"}))
    first = list(feeds.run_fetch(session, row.id).slugs)
    session.commit()
    again = feeds.run_fetch(session, row.id)
    session.commit()
    assert again.slugs == first and again.state == "done"
    assert feed_server.requests == ["/feed"] and article_count(session) == 2


@pytest.mark.parametrize("setup, message", [
    (lambda s: s.route("/gone", b"gone", status=404), "HTTP 404 Not Found"),
    (lambda s: s.route("/page", b"<html><body>hi</body></html>", headers={"Content-Type": "text/html"}),
     "not an RSS or Atom feed"),
    (lambda s: s.route("/broken", BROKEN), "not a readable RSS or Atom feed"),
    (lambda s: s.route("/big", b"<rss>" + b" " * 2000 + b"</rss>"), "larger than 1000 bytes"),
    (lambda s: s.route("/moved", b"", status=302, headers={"Location": "ftp://127.0.0.1/feed"}),
     "not an http(s) URL: 'ftp://127.0.0.1/feed'"),
    (lambda s: s.route("/moved", b"", status=302, headers={"Location": "file:///etc/passwd"}),
     "HTTP 302"),
    (lambda s: f"http://127.0.0.1:{closed_port()}/feed", "cannot reach 127.0.0.1:"),
    (lambda s: s.route("/slow", RSS, delay=2), "no answer from 127.0.0.1:"),
])
def test_run_fetch_failures_are_one_line_on_the_row(app, session, feed_server, setup, message):
    app.config.update(FEED_MAX_BYTES=1000, FEED_FETCH_TIMEOUT=0.5)
    fetch = feeds.run_fetch(session, fetch_row(session, setup(feed_server)).id)
    assert fetch.state == "failed" and fetch.slugs == []
    assert len(fetch.errors) == 1 and message in fetch.errors[0] and "\n" not in fetch.errors[0]


def test_run_fetch_of_a_missing_row(session):
    with pytest.raises(feeds.FetchNotFound):
        feeds.run_fetch(session, 4242)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.test/feed", "http://", "feed"])
def test_only_http_urls_are_fetched(session, url):
    with pytest.raises(feeds.FeedError, match="not an http"):
        feeds.queue_fetch(session, url)


# ---------------------------------------------------------------- queuing

def test_queue_fetch_publishes_after_commit_only(app, session):
    kept = feeds.queue_fetch(session, "http://newsroom.test/feed")
    assert queued_messages(app) == 0
    session.commit()
    assert queued_messages(app) == 1 and kept.state == "queued"
    feeds.queue_fetch(session, "http://newsroom.test/other")
    session.rollback()
    assert queued_messages(app) == 1
    assert session.scalars(select(FeedFetch.url)).all() == ["http://newsroom.test/feed"]


def test_queue_configured_skips_feeds_still_waiting(app, session):
    first = feeds.queue_configured(session, ["http://a.test/feed", "http://b.test/feed"])
    session.commit()
    first[0].state = "done"
    session.commit()
    again = feeds.queue_configured(session, '["http://a.test/feed", "http://b.test/feed"]')
    session.commit()
    assert [f.url for f in again] == ["http://a.test/feed"]
    assert queued_messages(app) == 3


@pytest.mark.slow
def test_beat_poll_fetches_configured_feeds_in_a_worker(app, session, worker, feed_server):
    url = feed_server.route("/feed", RSS)
    worker(extra_env={"NEWSLETTER_FEEDS": json.dumps([url])})
    celery_app(app).send_task("feeds.poll")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        session.rollback()
        fetch = session.scalar(select(FeedFetch).where(FeedFetch.state != "queued"))
        if fetch:
            break
        time.sleep(0.2)
    assert fetch is not None and fetch.url == url and fetch.state == "done"
    assert fetch.slugs == ["council-approves-the-harbour-plan", "ferry-timetable-changes-what-they-mean"]
