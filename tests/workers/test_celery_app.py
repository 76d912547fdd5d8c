"""The workers' Celery app: its settings, the app context of tasks, and a real worker."""
from __future__ import annotations

import http.server
import threading
import time

import pytest
from flask import current_app, has_app_context

from newsletter import db, queue
from newsletter.models import Article, FeedFetch
from newsletter.redis_url import client, for_kombu
from workers.celery_app import celery_init_app


@pytest.fixture
def celery(app):
    celery = celery_init_app(app)
    yield celery
    celery.close()


def test_settings_suit_idempotent_tasks_on_redis(celery, app):
    conf = celery.conf

    assert conf.broker_url == for_kombu(app.config["REDIS_URL"])
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_ignore_result is True
    assert conf.result_backend is None
    assert conf.broker_transport_options["visibility_timeout"] == queue.VISIBILITY_TIMEOUT
    assert conf.enable_utc is True


def test_the_worker_app_is_the_publisher_of_its_flask_app(celery, app):
    assert queue.celery_app(app) is celery
    assert {"feeds.fetch", "feeds.poll"} <= set(celery.tasks)


def test_tasks_run_inside_the_flask_app_context(celery, app):
    seen = {}

    @celery.task(name="tests.context_probe")
    def context_probe(fetch_id):
        seen["app"] = current_app._get_current_object()
        seen["fetch"] = db.session().get(FeedFetch, fetch_id)

    with app.app_context():
        session = db.session()
        fetch = FeedFetch(url="https://wire.example.org/rss")
        session.add(fetch)
        session.commit()
    assert not has_app_context()

    context_probe.apply(args=[fetch.id])

    assert seen["app"] is app
    assert seen["fetch"].url == "https://wire.example.org/rss"
    assert not has_app_context()


def test_beat_polls_feeds_only_when_some_are_configured(app):
    from workers.celery_app import beat_schedule

    assert "poll-feeds" not in beat_schedule(app.config)
    schedule = beat_schedule({"FEEDS": ["https://wire.example.org/rss"], "FEED_POLL_MINUTES": 5})
    assert schedule["poll-feeds"] == {"task": "feeds.poll", "schedule": 300.0}


# ---------------------------------------------------------------- a real worker

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire</title><link>http://wire.test/</link>
<description>Wire stories</description>
<item><guid>wire-1</guid><title>Harbour reopens after the storm</title>
<link>http://wire.test/harbour</link><pubDate>Wed, 25 Nov 2026 08:00:00 GMT</pubDate>
<description>&lt;p&gt;The harbour reopened on Wednesday morning.&lt;/p&gt;</description></item>
</channel></rss>"""


@pytest.fixture
def feed_url():
    """A tiny RSS feed served over HTTP on loopback."""

    class Feed(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(RSS)))
            self.end_headers()
            self.wfile.write(RSS)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/rss"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _wait_for_fetch(app, fetch_id: int, timeout: float = 60) -> FeedFetch:
    end = time.monotonic() + timeout
    while True:
        with app.app_context():
            fetch = db.session().get(FeedFetch, fetch_id)
        if fetch.state != "queued" or time.monotonic() > end:
            return fetch
        time.sleep(0.1)


@pytest.mark.slow
def test_a_real_worker_runs_a_task_queued_after_commit(app, worker, feed_url, redis_url):
    proc = worker(concurrency=1)
    with app.app_context():
        session = db.session()
        fetch = FeedFetch(url=feed_url)
        session.add(fetch)
        session.flush()
        queue.enqueue(session, "feeds.fetch", fetch.id)
        session.commit()
        queue.celery_app(app).close()

    fetch = _wait_for_fetch(app, fetch.id)

    assert fetch.state == "done", proc.log()[-3000:]
    assert len(fetch.slugs) == 1 and fetch.errors == []
    with app.app_context():
        article = db.session().query(Article).filter_by(slug=fetch.slugs[0]).one()
    assert article.headline == "Harbour reopens after the storm"
    broker = client(redis_url)
    try:
        assert broker.llen("celery") == 0
        # Acknowledged late, once the task has run: nothing is left for redelivery.
        assert _eventually(lambda: broker.hlen("unacked") == 0)
    finally:
        broker.close()


def _eventually(check, timeout: float = 10) -> bool:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True
