"""Sending editions with real `celery worker` and `celery beat` processes, a real Redis and
a real SMTP server, through the faults the ledger is built for: a worker killed mid-send,
Redis restarted mid-send, refusals, a dropped connection, an unsubscribe mid-send, and
pause, resume and cancel from another process.
"""
from __future__ import annotations

import collections
import signal

import pytest
from sqlalchemy import delete, select

from newsletter import db, delivery, links, subscribers, suppression
from newsletter.addresses import email_hash
from newsletter.consent import ConsentContext
from newsletter.models import Delivery, Subscriber, Suppression, utcnow
from tests.support.delivery import FAST, address, make_edition, make_subscribers, wait_until
from tests.support.processes import BeatProcess, OwnRedis
from tests.support.smtp import _Handler

pytestmark = pytest.mark.slow

# The machine has two cores shared with other test runs: generous, never tight.
TIMEOUT = 240


@pytest.fixture
def broker_url(request, redis_url, tmp_path):
    """The shared test Redis, or (parametrized "own") a server this test may restart."""
    if getattr(request, "param", "shared") == "shared":
        yield redis_url
        return
    server = OwnRedis(tmp_path)
    request.node.own_redis = server
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def app_config(app_config, broker_url):
    return app_config | FAST | {"REDIS_URL": broker_url}


def env_of(config: dict) -> dict:
    return {f"NEWSLETTER_{k}": str(v) for k, v in config.items()}


@pytest.fixture
def stack(app, app_config, worker, tmp_path):
    """Start workers and beat with the test's SEND_* settings (plus any given)."""
    beats: list[BeatProcess] = []

    class Stack:
        def worker(self, concurrency=2, **settings):
            return worker(concurrency=concurrency, extra_env=env_of(FAST | settings))

        def beat(self, **settings):
            beats.append(BeatProcess(app_config, tmp_path, env_of(FAST | settings)))
            return beats[-1]

    yield Stack()
    for beat in beats:
        beat.stop()


def prepare_send(app, count: int) -> tuple[int, list[int]]:
    with app.app_context():
        session = db.session()
        ids = make_subscribers(session, count)
        edition = make_edition(session)
        session.commit()
        return edition.id, ids


def start(app, edition_id: int) -> None:
    with app.app_context():
        session = db.session()
        assert delivery.start_send(session, edition_id)
        session.commit()


def progress(app, edition_id: int) -> dict:
    with app.app_context():
        return delivery.progress(db.session(), edition_id)


def finished(app, edition_id: int, timeout: float = TIMEOUT) -> dict:
    report = wait_until(lambda: (p := progress(app, edition_id))["state"] == "sent" and p, timeout, 0.5)
    assert report, progress(app, edition_id)
    return report


def per_recipient(smtp_server) -> collections.Counter:
    with smtp_server.lock:
        return collections.Counter(rcpt for rcpt, _ in smtp_server.messages)


def control(app, action, edition_id: int, *args):
    with app.app_context():
        session = db.session()
        result = action(session, edition_id, *args)
        session.commit()
        return result


# ---------------------------------------------------------------- the whole send

def test_two_thousand_recipients_get_exactly_one_mail_each(app, stack, smtp_server):
    edition_id, ids = prepare_send(app, 2000)
    stack.worker()
    stack.beat()

    start(app, edition_id)
    start_again = control(app, delivery.start_send, edition_id)
    report = finished(app, edition_id)

    assert start_again is False
    assert (report["total"], report["sent"], report["pending"], report["failed"]) == (2000, 2000, 0, 0)
    counts = per_recipient(smtp_server)
    assert set(counts) == {address(n) for n in range(1, 2001)}
    assert set(counts.values()) == {1}
    with app.app_context():
        session = db.session()
        for n in (1, 777, 2000):
            subscriber = session.get(Subscriber, ids[n - 1])
            [msg] = smtp_server.to(address(n))
            assert msg["Message-ID"] == f"<e{edition_id}.s{subscriber.id}@localhost>"
            assert msg["To"] == f"Reader {n} <{address(n)}>"
            own_link = links.unsubscribe_url("http://newsletter.test", subscriber, "test-secret-key")
            assert str(msg["List-Unsubscribe"]).startswith(f"<{own_link}>")
            assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert own_link in msg.get_body(("plain",)).get_content()


# ---------------------------------------------------------------- never lost, never twice

def test_a_worker_killed_mid_send_loses_nothing_and_duplicates_at_most_one_per_connection(
        app, stack, smtp_server):
    edition_id, _ = prepare_send(app, 900)
    doomed = stack.worker(concurrency=2, SEND_RATE=150)
    stack.beat()
    start(app, edition_id)
    assert wait_until(lambda: progress(app, edition_id)["sent"] >= 250, TIMEOUT, 0.1)

    doomed.kill(signal.SIGKILL)
    at_kill = progress(app, edition_id)
    stack.worker(concurrency=2, SEND_RATE=150)
    report = finished(app, edition_id)

    assert at_kill["pending"] > 0
    assert (report["sent"], report["failed"], report["pending"]) == (900, 0, 0)
    counts = per_recipient(smtp_server)
    assert set(counts) == {address(n) for n in range(1, 901)}
    duplicates = sum(c - 1 for c in counts.values())
    assert duplicates <= 2, duplicates  # two pool processes: two connections killed


@pytest.mark.parametrize("broker_url", ["own"], indirect=True)
def test_redis_restarted_mid_send_everything_is_delivered(app, stack, smtp_server, request):
    edition_id, _ = prepare_send(app, 800)
    stack.worker(concurrency=2, SEND_RATE=120)
    beat = stack.beat()
    start(app, edition_id)
    assert wait_until(lambda: progress(app, edition_id)["sent"] >= 150, TIMEOUT, 0.1)

    request.node.own_redis.restart(down_for=2)  # no persistence: every queued batch is lost
    report = finished(app, edition_id)

    assert (report["sent"], report["failed"], report["pending"]) == (800, 0, 0), beat.log()[-3000:]
    counts = per_recipient(smtp_server)
    assert set(counts) == {address(n) for n in range(1, 801)}
    assert sum(c - 1 for c in counts.values()) <= 2


class DropOnce(_Handler):
    """Closes the connection once, after the data of a message to `victim` arrived and
    before answering it: the client cannot know whether the message was taken."""

    def __init__(self, server, victim: str) -> None:
        super().__init__(server)
        self.victim, self.dropped = victim, False

    async def handle_DATA(self, server, session, envelope):
        if not self.dropped and self.victim in envelope.rcpt_tos:
            self.dropped = True
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        return await super().handle_DATA(server, session, envelope)


def test_refusals_and_a_dropped_connection_end_as_sent_or_failed_and_failed_ones_can_be_resent(app, stack, smtp_server):
    edition_id, _ = prepare_send(app, 300)
    busy = {address(n): 2 for n in (5, 50, 150, 250)}   # 4xx twice, then accepted
    gone = {address(n) for n in (7, 77, 277)}

    def fault(rcpt):
        if rcpt in gone:
            return "550 5.1.1 No such mailbox"
        if busy.get(rcpt, 0) > 0:
            busy[rcpt] -= 1
            return "451 4.7.1 Try again later" if rcpt != address(150) else "421 4.7.0 Too busy"
        return None

    smtp_server.fault = fault
    smtp_server.controller.handler = DropOnce(smtp_server, address(120))
    stack.worker()
    stack.beat()

    start(app, edition_id)
    report = finished(app, edition_id)

    assert (report["sent"], report["failed"], report["pending"]) == (297, 3, 0)
    counts = per_recipient(smtp_server)
    assert all(counts[a] == 1 for a in busy) and counts[address(120)] == 1
    assert all(counts[a] == 0 for a in gone)
    with app.app_context():
        session = db.session()
        assert all(suppression.is_suppressed(session, a) for a in gone)
        retried = session.scalars(select(Delivery.attempts).join(Subscriber)
                                  .where(Subscriber.email.in_(busy))).all()
        assert sorted(retried) == [3, 3, 3, 3]

    # The mailboxes are back: lift two suppressions and send to the failed ones again.
    with app.app_context():
        session = db.session()
        session.execute(delete(Suppression).where(Suppression.email_hash.in_(
            [email_hash(address(7)), email_hash(address(77))])))
        settings = delivery.SendSettings.from_config(app.config)
        assert delivery.resend_failed(session, edition_id, settings) == 3
        session.commit()
    smtp_server.fault = None
    again = finished(app, edition_id)

    assert (again["sent"], again["failed"], again["skipped"]) == (299, 0, 1)
    counts = per_recipient(smtp_server)
    assert (counts[address(7)], counts[address(77)], counts[address(277)]) == (1, 1, 0)


def test_an_unsubscribe_during_the_send_is_honoured_for_those_not_yet_reached(app, stack, smtp_server):
    edition_id, ids = prepare_send(app, 600)
    stack.worker(concurrency=1, SEND_RATE=100)
    start(app, edition_id)
    assert wait_until(lambda: progress(app, edition_id)["sent"] >= 60, TIMEOUT, 0.1)

    leaving = ids[-100:]
    with app.app_context():
        session = db.session()
        for subscriber_id in leaving:
            subscribers.unsubscribe(session, session.get(Subscriber, subscriber_id),
                                    ConsentContext(source="mail"))
        session.commit()
        left_at = utcnow()
    report = finished(app, edition_id)

    assert report["skipped"] > 0 and report["sent"] + report["skipped"] == 600
    with app.app_context():
        rows = db.session().execute(select(Delivery.state, Delivery.sent_at, Subscriber.email)
                                    .join(Subscriber).where(Subscriber.id.in_(leaving))).all()
    counts = per_recipient(smtp_server)
    for state, sent_at, email in rows:
        if state == "sent":
            assert sent_at <= left_at  # reached before the unsubscribe was committed
        else:
            assert state == "skipped" and counts[email] == 0


# ---------------------------------------------------------------- control from another process

def test_pause_resume_and_cancel_from_another_process(app, stack, smtp_server):
    edition_id, _ = prepare_send(app, 1500)
    stack.worker(concurrency=2, SEND_RATE=150)
    stack.beat()
    start(app, edition_id)
    assert wait_until(lambda: progress(app, edition_id)["sent"] >= 100, TIMEOUT, 0.1)

    assert control(app, delivery.pause, edition_id)
    settled = wait_until(lambda: _steady(app, edition_id), 30, 0)
    assert settled and settled["state"] == "paused" and settled["pending"] > 0

    settings = delivery.SendSettings.from_config(app.config)
    assert control(app, delivery.resume, edition_id, settings)
    assert wait_until(lambda: progress(app, edition_id)["sent"] >= settled["sent"] + 200, TIMEOUT, 0.1)
    assert control(app, delivery.cancel, edition_id)
    stopped = wait_until(lambda: _steady(app, edition_id), 30, 0)

    assert stopped["state"] == "cancelled" and stopped["pending"] == 0
    assert stopped["sent"] + stopped["skipped"] == 1500 and stopped["skipped"] > 0
    counts = per_recipient(smtp_server)
    assert sum(counts.values()) == stopped["sent"] and set(counts.values()) == {1}


def _steady(app, edition_id: int) -> dict | None:
    """The progress once `sent` stayed the same for two seconds (the batches stopped)."""
    import time
    before = progress(app, edition_id)
    time.sleep(2)
    after = progress(app, edition_id)
    return after if after["sent"] == before["sent"] else None
