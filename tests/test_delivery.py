"""Delivery, in one process: start, plan, batches, faults, control, progress, the sweeper.

Real database, real Redis broker (messages are read back from it, never run), real SMTP
server on loopback. The worker-process tests are in tests/workers/test_delivery_workers.py.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from newsletter import db, delivery, ledger, links, mail, sending, subscribers, suppression, throttle
from newsletter.consent import ConsentContext
from newsletter.models import Delivery, Edition, Subscriber, utcnow
from newsletter.redis_url import client
from tests.support.delivery import (FAST, address, deliveries, make_edition, make_subscribers,
                                    published, states)


@pytest.fixture
def app_config(app_config):
    return app_config | FAST


@pytest.fixture
def settings(app):
    return delivery.SendSettings.from_config(app.config)


@pytest.fixture(autouse=True)
def _redis_for_helpers(session, redis_url):
    session.info["redis_url"] = redis_url


@pytest.fixture
def edition(session):
    edition = make_edition(session)
    session.commit()
    return edition


def started(session, edition_id, settings) -> list[tuple[int, int, str]]:
    """Start and plan the send; the (first, last, reservation) of each batch it queued."""
    assert delivery.start_send(session, edition_id)
    session.commit()
    delivery.plan(session, edition_id, settings, checkpoint=session.commit)
    session.commit()
    return queued_batches(session)


def queued_batches(session) -> list[tuple[int, int, str]]:
    broker = client(session.info["redis_url"])
    try:
        return [tuple(args[1:]) for name, args, _ in published(broker) if name == delivery.BATCH_TASK]
    finally:
        broker.close()


def run_batch(app, session, edition_id, first, last, reservation, limiter=None):
    with mail.sender(app) as outbox:
        outcome = sending.send_batch(
            session, outbox, limiter or throttle.NoLimit(), edition_id, first, last, reservation,
            settings=delivery.SendSettings.from_config(app.config),
            message=sending.MessageSettings.from_config(app.config), checkpoint=session.commit)
    session.commit()
    return outcome


def run_batches(app, session, edition_id, batches):
    return [run_batch(app, session, edition_id, *batch) for batch in batches]


# ---------------------------------------------------------------- start and plan

def test_start_send_moves_a_draft_to_sending_and_queues_the_plan_after_commit(session, edition, broker):
    assert delivery.start_send(session, edition.id)
    assert published(broker) == []

    session.commit()

    assert [(name, args) for name, args, _ in published(broker)] == [("delivery.plan", [edition.id])]
    assert session.get(Edition, edition.id, populate_existing=True).state == "sending"
    assert session.get(Edition, edition.id, populate_existing=True).send_requested_at is not None


def test_a_second_trigger_changes_nothing(session, edition, broker):
    assert delivery.start_send(session, edition.id)
    session.commit()

    assert delivery.start_send(session, edition.id) is False
    session.commit()

    assert len(published(broker)) == 1


def test_two_concurrent_triggers_only_one_wins(app, edition, broker):
    with app.app_context():
        first = db.session()
        with app.app_context():
            second = db.session()
            assert first is not second
            won = [delivery.start_send(first, edition.id)]
            first.commit()
            won.append(delivery.start_send(second, edition.id))
            second.commit()

    assert sorted(won) == [False, True]
    assert len(published(broker)) == 1


def test_plan_snapshots_only_receiving_subscribers(session, edition, settings):
    receiving = make_subscribers(session, 5)
    make_subscribers(session, 2, start=100, state="pending")
    make_subscribers(session, 2, start=200, state="unsubscribed")
    make_subscribers(session, 1, start=300, paused_until=utcnow() + timedelta(days=3))
    ended_pause = make_subscribers(session, 1, start=400, paused_until=utcnow() - timedelta(days=1))
    suppressed = make_subscribers(session, 1, start=500)
    suppression.suppress(session, suppression.addresses.email_hash(address(500)), "manual")
    session.commit()

    started(session, edition.id, settings)

    planned = {d.subscriber_id for d in deliveries(session, edition.id)}
    assert planned == set(receiving) | set(ended_pause)
    assert suppressed[0] not in planned
    assert session.get(Edition, edition.id, populate_existing=True).planned_at is not None


def test_plan_queues_batches_of_the_configured_size_covering_every_row(session, edition, settings, broker):
    make_subscribers(session, 250)
    session.commit()

    batches = started(session, edition.id, settings)

    ids = [d.id for d in deliveries(session, edition.id)]
    assert [(first, last) for first, last, _ in batches] == [
        (ids[0], ids[99]), (ids[100], ids[199]), (ids[200], ids[249])]
    assert len({token for _, _, token in batches}) == 1


def test_planning_again_adds_and_queues_nothing(session, edition, settings, broker):
    make_subscribers(session, 30)
    session.commit()
    started(session, edition.id, settings)
    before = len(published(broker))

    again = delivery.plan(session, edition.id, settings, checkpoint=session.commit)
    session.commit()
    # Even a plan that starts over (its task ran twice at once) inserts nothing twice.
    session.execute(update(Edition).values(planned_at=None))
    session.commit()
    rerun = delivery.plan(session, edition.id, settings, checkpoint=session.commit)
    session.commit()

    assert (again, rerun) == (0, 0)
    assert len(deliveries(session, edition.id)) == 30
    assert len(published(broker)) == before


def test_planning_in_chunks_gives_the_same_rows(session, edition, app):
    make_subscribers(session, 120)
    session.commit()
    chunked = delivery.SendSettings.from_config(app.config | {"SEND_PLAN_CHUNK": 7})

    started(session, edition.id, chunked)

    assert len({d.subscriber_id for d in deliveries(session, edition.id)}) == 120


def test_a_send_with_no_recipients_is_sent_at_once(session, edition, settings):
    started(session, edition.id, settings)

    assert session.get(Edition, edition.id, populate_existing=True).state == "sent"
    assert delivery.progress(session, edition.id)["total"] == 0


# ---------------------------------------------------------------- sending a batch

def test_every_recipient_gets_one_message_with_their_own_headers(app, session, edition, settings, smtp_server):
    ids = make_subscribers(session, 120)
    session.commit()

    outcomes = run_batches(app, session, edition.id, started(session, edition.id, settings))

    assert sum(o.sent for o in outcomes) == 120
    assert states(session, edition.id) == {"sent": 120}
    for n, subscriber_id in ((1, ids[0]), (120, ids[-1])):
        [msg] = smtp_server.to(address(n))
        subscriber = session.get(Subscriber, subscriber_id)
        assert msg["Message-ID"] == f"<e{edition.id}.s{subscriber_id}@localhost>"
        assert msg["To"] == f"Reader {n} <{address(n)}>"
        assert msg["Subject"] == "The Daily Edition: harbour news"
        unsubscribe = links.unsubscribe_url("http://newsletter.test", subscriber, "test-secret-key")
        assert f"<{unsubscribe}>" in str(msg["List-Unsubscribe"])
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert {p.get_content_type() for p in msg.iter_parts()} == {"text/plain", "text/html"}
    assert len(smtp_server.messages) == 120
    assert len(set(smtp_server.peers)) == 2  # one connection per batch
    assert session.get(Edition, edition.id, populate_existing=True).state == "sent"
    assert all(d.sent_at is not None and d.claimed_by is None for d in deliveries(session, edition.id))


def test_a_batch_sends_nothing_held_by_another_worker(app, session, edition, settings, smtp_server):
    make_subscribers(session, 10)
    session.commit()
    [(first, last, token)] = started(session, edition.id, settings)
    now = utcnow()
    held = ledger.claim(session, edition.id, first, last, token, "wother", now + timedelta(minutes=5), now)
    session.commit()

    outcome = run_batch(app, session, edition.id, first, last, token)

    assert len(held) == 10 and outcome.sent == 0 and smtp_server.messages == []


def test_a_lapsed_lease_is_taken_over(app, session, edition, settings, smtp_server):
    make_subscribers(session, 10)
    session.commit()
    [(first, last, token)] = started(session, edition.id, settings)
    now = utcnow()
    ledger.claim(session, edition.id, first, last, token, "wdead", now - timedelta(seconds=1), now)
    session.commit()

    outcome = run_batch(app, session, edition.id, first, last, None)

    assert outcome.sent == 10


def test_an_unsubscribe_committed_before_the_send_reaches_them_is_honoured(app, session, edition, settings, smtp_server):
    ids = make_subscribers(session, 6)
    session.commit()
    batches = started(session, edition.id, settings)
    leaving = session.get(Subscriber, ids[3])
    subscribers.unsubscribe(session, leaving, ConsentContext(source="mail"))
    pausing = session.get(Subscriber, ids[4])
    subscribers.pause(session, pausing, 7)
    suppression.record_report(session, address(6), "hard", utcnow(), "550 from elsewhere")
    session.commit()

    run_batches(app, session, edition.id, batches)

    by_subscriber = {d.subscriber_id: d for d in deliveries(session, edition.id)}
    assert [by_subscriber[i].state for i in ids] == ["sent"] * 3 + ["skipped"] * 3
    assert [by_subscriber[i].last_error for i in ids[3:]] == ["unsubscribed", "paused", "suppressed"]
    assert smtp_server.to(address(4)) == []
    assert session.get(Edition, edition.id, populate_existing=True).state == "sent"


def test_transient_refusals_stay_pending_and_are_retried_with_backoff(app, session, edition, settings, smtp_server, broker):
    make_subscribers(session, 5)
    session.commit()
    [(first, last, token)] = started(session, edition.id, settings)
    smtp_server.fault = lambda rcpt: "451 4.7.1 Greylisted, try later" if rcpt == address(2) else None
    broker.delete("celery")

    outcome = run_batch(app, session, edition.id, first, last, token)

    assert (outcome.sent, outcome.retrying) == (4, 1)
    [row] = [d for d in deliveries(session, edition.id) if d.state == "pending"]
    assert row.attempts == 1 and "451" in row.last_error and row.claimed_by.startswith("q")
    [(name, args, headers)] = published(broker)
    assert (name, args) == (delivery.BATCH_TASK, [edition.id, first, last, row.claimed_by])
    assert headers["eta"] is not None  # queued with a countdown

    smtp_server.fault = None
    retried = run_batch(app, session, edition.id, first, last, row.claimed_by)

    assert retried.sent == 1
    assert states(session, edition.id) == {"sent": 5}
    assert len(smtp_server.to(address(2))) == 1


def test_a_recipient_refused_for_good_fails_and_is_suppressed(app, session, edition, settings, smtp_server):
    make_subscribers(session, 3)
    session.commit()
    smtp_server.fault = lambda rcpt: "550 5.1.1 No such user" if rcpt == address(3) else None

    run_batches(app, session, edition.id, started(session, edition.id, settings))

    assert states(session, edition.id) == {"sent": 2, "failed": 1}
    assert suppression.is_suppressed(session, address(3))
    assert session.get(Edition, edition.id, populate_existing=True).state == "sent"


def test_retries_end_in_failed_after_the_last_attempt(app, session, edition, settings, smtp_server):
    make_subscribers(session, 2)
    session.commit()
    [(first, last, token)] = started(session, edition.id, settings)
    smtp_server.fault = lambda rcpt: "452 4.2.2 Mailbox full" if rcpt == address(1) else None

    for _ in range(settings.max_attempts):
        outcome = run_batch(app, session, edition.id, first, last, token)
        token = None
        session.execute(update(Delivery).values(claimed_until=utcnow() - timedelta(seconds=1)))
        session.commit()

    [failed] = [d for d in deliveries(session, edition.id) if d.state == "failed"]
    assert failed.attempts == settings.max_attempts and "452" in failed.last_error
    assert outcome.failed == 1 and not suppression.is_suppressed(session, address(1))
    assert session.get(Edition, edition.id, populate_existing=True).state == "sent"


def test_a_dropped_connection_is_reopened_once_and_the_batch_goes_on(app, session, edition, settings, smtp_server):
    make_subscribers(session, 6)
    session.commit()
    [(first, last, token)] = started(session, edition.id, settings)
    dropped = []

    def drop_once(rcpt):
        if rcpt == address(3) and not dropped:
            dropped.append(rcpt)
            return "421 4.3.2 Shutting down"
        return None

    smtp_server.fault = drop_once
    outcome = run_batch(app, session, edition.id, first, last, token)

    assert (outcome.sent, outcome.retrying, outcome.stopped) == (5, 1, None)
    assert len(set(smtp_server.peers)) == 2


def test_a_server_that_keeps_failing_stops_the_batch(app, session, edition, settings, smtp_server):
    make_subscribers(session, 6)
    session.commit()
    [(first, last, token)] = started(session, edition.id, settings)
    smtp_server.stop()

    outcome = run_batch(app, session, edition.id, first, last, token)

    assert (outcome.sent, outcome.stopped, outcome.retrying) == (0, "server unavailable", 6)
    assert sorted(d.attempts for d in deliveries(session, edition.id)) == [0, 0, 0, 0, 1, 1]


def test_the_shared_rate_limit_is_taken_for_each_message(app, session, edition, settings, smtp_server, redis_url):
    make_subscribers(session, 12)
    session.commit()
    [batch] = started(session, edition.id, settings)
    bucket = throttle.TokenBucket(client(redis_url), rate=20, burst=2)
    try:
        begin = utcnow()
        run_batch(app, session, edition.id, *batch, limiter=bucket)
        elapsed = (utcnow() - begin).total_seconds()
    finally:
        bucket.close()

    assert elapsed >= (12 - 2) / 20 * 0.95


# ---------------------------------------------------------------- control

def test_pause_stops_batches_and_resume_queues_the_rest_again(app, session, edition, settings, smtp_server, broker):
    make_subscribers(session, 250)
    session.commit()
    batches = started(session, edition.id, settings)
    run_batch(app, session, edition.id, *batches[0])

    assert delivery.pause(session, edition.id)
    session.commit()
    paused = run_batch(app, session, edition.id, *batches[1])

    assert paused.sent == 0 and states(session, edition.id) == {"sent": 100, "pending": 150}
    assert delivery.pause(session, edition.id) is False
    broker.delete("celery")

    assert delivery.resume(session, edition.id, settings)
    session.commit()

    requeued = queued_batches(session)
    assert len(requeued) == 2  # the queued batches' rows were taken back, not left to lapse
    run_batches(app, session, edition.id, requeued + batches[1:])
    assert states(session, edition.id) == {"sent": 250}
    assert len(smtp_server.messages) == 250
    assert session.get(Edition, edition.id, populate_existing=True).state == "sent"


def test_a_pause_between_messages_stops_the_running_batch(app, session, edition, settings, smtp_server):
    make_subscribers(session, 20)
    session.commit()
    [batch] = started(session, edition.id, settings)
    sent = []

    def pause_after_five(rcpt):
        sent.append(rcpt)
        if len(sent) == 5:
            with app.app_context():
                other = db.session()
                delivery.pause(other, edition.id)
                other.commit()

    smtp_server.fault = pause_after_five
    outcome = run_batch(app, session, edition.id, *batch)

    assert (outcome.sent, outcome.stopped) == (5, "paused")
    pending = [d for d in deliveries(session, edition.id) if d.state == "pending"]
    assert len(pending) == 15 and all(d.claimed_by is None for d in pending)


def test_cancel_skips_every_pending_delivery(app, session, edition, settings, smtp_server):
    make_subscribers(session, 150)
    session.commit()
    batches = started(session, edition.id, settings)
    run_batch(app, session, edition.id, *batches[0])

    assert delivery.cancel(session, edition.id)
    session.commit()
    run_batches(app, session, edition.id, batches[1:])

    assert states(session, edition.id) == {"sent": 100, "skipped": 50}
    assert delivery.cancel(session, edition.id) is False
    assert delivery.resume(session, edition.id, settings) is False
    assert session.get(Edition, edition.id, populate_existing=True).state == "cancelled"


def test_resend_failed_gives_the_failed_a_new_chance(app, session, edition, settings, smtp_server, broker):
    make_subscribers(session, 4)
    session.commit()
    smtp_server.fault = lambda rcpt: "554 5.7.1 Rejected for policy reasons" if rcpt in (address(1), address(2)) else None
    smtp_server.fault = lambda rcpt: "550 no" if rcpt in (address(1), address(2)) else None
    run_batches(app, session, edition.id, started(session, edition.id, settings))
    assert states(session, edition.id) == {"sent": 2, "failed": 2}
    assert session.get(Edition, edition.id, populate_existing=True).state == "sent"
    # One address was suppressed by its refusal; the other is fine again.
    session.execute(update(Subscriber).where(Subscriber.email == address(2)).values(email_hash="x" * 64))
    smtp_server.fault = None
    broker.delete("celery")

    assert delivery.resend_failed(session, edition.id, settings) == 2
    session.commit()
    run_batches(app, session, edition.id, queued_batches(session))

    assert states(session, edition.id) == {"sent": 3, "skipped": 1}
    assert len(smtp_server.to(address(2))) == 1 and smtp_server.to(address(1)) == []
    assert session.get(Edition, edition.id, populate_existing=True).state == "sent"
    assert delivery.resend_failed(session, edition.id, settings) == 0


def test_progress_counts_deliveries_by_state(app, session, edition, settings, smtp_server):
    make_subscribers(session, 150)
    session.commit()
    batches = started(session, edition.id, settings)
    smtp_server.fault = lambda rcpt: "550 no" if rcpt == address(7) else None
    run_batch(app, session, edition.id, *batches[0])

    report = delivery.progress(session, edition.id)

    assert {k: report[k] for k in ("id", "state", "total", "sent", "failed", "pending", "skipped")} == {
        "id": edition.id, "state": "sending", "total": 150, "sent": 99, "failed": 1,
        "pending": 50, "skipped": 0}
    assert report["rate"] > 0 and report["eta_seconds"] >= 0


def test_progress_of_an_unknown_edition(session):
    with pytest.raises(delivery.editions.EditionNotFound):
        delivery.progress(session, 999)


# ---------------------------------------------------------------- the sweeper

def test_the_sweeper_requeues_rows_of_a_dead_worker_only_once_their_lease_lapsed(app, session, edition, settings, broker):
    make_subscribers(session, 150)
    session.commit()
    [first_batch, second_batch] = started(session, edition.id, settings)
    now = utcnow()
    ledger.claim(session, edition.id, *first_batch[:2], first_batch[2], "wdead", now + timedelta(seconds=10), now)
    session.commit()
    broker.delete("celery")

    assert delivery.sweep(session, settings, now).requeued == {}
    later = now + timedelta(seconds=settings.queue_grace + 1)
    report = delivery.sweep(session, settings, later)
    session.commit()

    assert report.requeued == {edition.id: 50}  # the second batch's reservation lapsed
    # The dead worker's lease lapses; the rows requeued just before stay reserved.
    report = delivery.sweep(session, settings, now + timedelta(seconds=11))
    assert report.requeued == {edition.id: 100}
    session.commit()
    assert len(queued_batches(session)) == 2


def test_the_sweeper_plans_a_send_whose_plan_was_lost(session, edition, settings, broker):
    delivery.start_send(session, edition.id)
    session.commit()
    broker.delete("celery")

    assert delivery.sweep(session, settings).planned == []
    report = delivery.sweep(session, settings, utcnow() + timedelta(seconds=settings.plan_grace + 1))
    session.commit()

    assert report.planned == [edition.id]
    assert [name for name, _, _ in published(broker)] == ["delivery.plan"]


def test_the_sweeper_marks_a_send_with_nothing_pending_as_sent(session, edition, settings):
    make_subscribers(session, 3)
    session.commit()
    started(session, edition.id, settings)
    session.execute(update(Delivery).values(state="sent"))
    session.commit()

    assert delivery.sweep(session, settings).finished == [edition.id]
    session.commit()
    assert session.get(Edition, edition.id, populate_existing=True).finished_at is not None


def test_beat_runs_the_sweeper(app):
    from workers.celery_app import beat_schedule

    assert beat_schedule(app.config)["sweep-deliveries"] == {"task": "delivery.sweep", "schedule": 1.0}


def test_a_message_on_its_way_when_the_send_is_cancelled_is_recorded_as_sent(app, session, edition, settings, smtp_server):
    make_subscribers(session, 10)
    session.commit()
    [batch] = started(session, edition.id, settings)

    def cancel_during_the_third(rcpt):
        if rcpt == address(3):
            with app.app_context():
                other = db.session()
                delivery.cancel(other, edition.id)
                other.commit()

    smtp_server.fault = cancel_during_the_third
    outcome = run_batch(app, session, edition.id, *batch)

    assert (outcome.sent, outcome.stopped) == (3, "cancelled")
    assert states(session, edition.id) == {"sent": 3, "skipped": 7}
    assert len(smtp_server.messages) == 3


def test_members_get_the_members_version_without_the_appeal(app, session, edition, settings, smtp_server):
    from newsletter import memberships
    from newsletter.models import Membership

    make_subscribers(session, 3)
    for n, status in ((1, "active"), (2, "canceled")):
        reader = memberships.new_reader(session, address(n).upper())  # case differs: still them
        session.add(Membership(reader_id=reader.id, stripe_subscription_id=f"sub_{n}", status=status))
    session.commit()

    run_batches(app, session, edition.id, started(session, edition.id, settings))

    def text(n):
        [msg] = smtp_server.to(address(n))
        return msg.get_body(("plain",)).get_content()
    assert "Thank you for being a member" in text(1) and "Become a member" not in text(1)
    for n in (2, 3):  # a former member and a reader who never joined
        assert "Become a member" in text(n) and "Thank you for being a member" not in text(n)


def test_control_is_the_one_entry_for_every_send_button(session, edition, settings):
    from newsletter import editions

    assert delivery.control(session, edition.id, "pause", settings) == delivery.Controlled("pause", "draft", False)
    assert delivery.control(session, edition.id, "send", settings).result is True
    session.commit()
    assert delivery.control(session, edition.id, "pause", settings) == delivery.Controlled("pause", "sending", True)
    assert delivery.control(session, edition.id, "resend-failed", settings).result == 0
    assert delivery.control(session, edition.id, "cancel", settings).result is True
    with pytest.raises(editions.EditionNotFound):
        delivery.control(session, 999_999, "send", settings)
