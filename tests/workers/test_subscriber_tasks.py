"""The sign-up, sign-up mail and welcome mail tasks: run in-process against the real SMTP
server, with faults and redeliveries, and the whole double opt-in cycle through a real
`celery -A workers worker`."""
from __future__ import annotations

import hashlib
import logging
import re
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from newsletter import db, links, queue, subscribers
from newsletter.addresses import email_hash
from newsletter.consent import DEFAULT_CONSENT_TEXT, ConsentContext
from newsletter.mail import TransientSendError
from newsletter.models import BounceEvent, ConfirmationToken, ConsentRecord, Subscriber, Suppression
from workers import tasks
from workers.celery_app import celery_init_app

TEXT = DEFAULT_CONSENT_TEXT
CTX = ConsentContext(ip="198.51.100.7", user_agent="pytest", page="/", source="form")
READER = "reader@example.org"


@pytest.fixture
def celery(app):
    celery = celery_init_app(app)
    yield celery
    celery.close()


def sign_up(app, email=READER, state=None) -> int:
    """Sign `email` up (committed) and return the subscriber id; `state` is forced after."""
    with app.app_context():
        session = db.session()
        subscribers.signup(session, email, CTX, TEXT)
        subscriber = subscribers.by_email(session, email)
        if state == "suppressed":
            session.add(Suppression(email_hash=subscriber.email_hash, reason="complaint"))
        elif state:
            subscriber.state = state
        session.commit()
        return subscriber.id


def queued_signup(app, email=READER) -> list:
    """The arguments of the "subscribers.signup" message a sign-up request publishes."""
    _name, args = subscribers.signup_task(email, CTX, TEXT, now=datetime(2026, 11, 25, 8, tzinfo=timezone.utc))
    return list(args)


def tokens(app) -> int:
    return rows(app, ConfirmationToken)


def rows(app, model) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model))


def confirm_token(msg) -> str:
    return re.search(r"/newsletter/confirm/([A-Za-z0-9_-]+)", msg.get_body(("plain",)).get_content())[1]


def test_the_tasks_are_registered_by_name(celery):
    assert {"subscribers.signup", "subscribers.signup_mail", "subscribers.welcome_mail"} <= set(celery.tasks)


def test_retry_delays_stay_far_below_the_visibility_timeout():
    for task in (tasks.sign_up, tasks.send_signup_mail, tasks.send_welcome_mail):
        assert TransientSendError in task.autoretry_for
        assert task.max_retries * task.retry_backoff_max < queue.VISIBILITY_TIMEOUT
        assert task.retry_backoff_max <= queue.VISIBILITY_TIMEOUT / 6


# ---------------------------------------------------------------- the queued sign-up

def test_the_signup_task_records_the_signup_and_sends_the_confirmation(app, celery, smtp_server):
    args = queued_signup(app)
    result = tasks.sign_up.apply(args=args)
    assert result.successful(), result.traceback
    with app.app_context():
        session = db.session()
        reader = subscribers.by_email(session, READER)
        [record] = session.scalars(select(ConsentRecord))
    assert (reader.state, reader.source) == ("pending", "form")
    assert (record.subscriber_id, record.request_id, record.action) == (reader.id, args[0], "signup")
    assert (record.ip, record.page, record.at.isoformat()) == (CTX.ip, CTX.page, "2026-11-25T08:00:00+00:00")
    [msg] = smtp_server.to(READER)
    assert msg["Subject"] == "Confirm your subscription to The Daily Edition"


def test_a_redelivered_signup_records_nothing_twice(app, celery, smtp_server):
    args = queued_signup(app)
    for _ in range(3):  # a worker lost after the work, twice: the message comes again
        assert tasks.sign_up.apply(args=args).successful()
    assert (rows(app, Subscriber), rows(app, ConsentRecord)) == (1, 1)
    # The mail is sent at least once: again on a redelivery, within the hourly cap.
    assert len(smtp_server.to(READER)) == 3


def test_concurrent_deliveries_of_one_signup_record_it_once(app, celery, smtp_server):
    args, barrier, results = queued_signup(app), threading.Barrier(3), []

    def deliver():
        barrier.wait(10)
        results.append(tasks.sign_up.apply(args=args))  # the loser of the race is retried

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [r.successful() for r in results] == [True] * 3, [r.traceback for r in results]
    assert (rows(app, Subscriber), rows(app, ConsentRecord)) == (1, 1)


def test_a_signup_redelivered_after_erasure_records_and_sends_nothing(app, celery, smtp_server):
    args = queued_signup(app)
    assert tasks.sign_up.apply(args=args).successful()
    with app.app_context():
        session = db.session()
        subscribers.erase(session, subscribers.by_email(session, READER))
        session.commit()
    assert tasks.sign_up.apply(args=args).successful()
    assert rows(app, Subscriber) == 0
    assert len(smtp_server.to(READER)) == 1


def test_a_failed_send_is_retried_without_recording_the_signup_again(app, celery, smtp_server):
    answers = iter(["451 4.3.0 try again later"])
    smtp_server.fault = lambda rcpt: next(answers, None)
    result = tasks.sign_up.apply(args=queued_signup(app))
    assert result.successful(), result.traceback
    assert len(smtp_server.to(READER)) == 1
    assert (rows(app, ConsentRecord), tokens(app)) == (1, 1)


# ---------------------------------------------------------------- in-process, real SMTP

def test_the_signup_task_sends_the_confirmation_and_commits_its_token(app, celery, smtp_server):
    subscriber_id = sign_up(app)
    result = tasks.send_signup_mail.apply(args=[subscriber_id])
    assert result.successful(), result.traceback
    [msg] = smtp_server.to(READER)
    assert msg["Subject"] == "Confirm your subscription to The Daily Edition"
    assert msg["From"] == "Daily Edition <daily@localhost>" and msg["Message-ID"].endswith("@localhost>")
    with app.app_context():
        assert subscribers.check_confirmation(db.session(), confirm_token(msg)).id == subscriber_id


@pytest.mark.parametrize("state", ["confirmed", "suppressed"])
def test_the_signup_task_for_other_states(app, celery, smtp_server, state):
    subscriber_id = sign_up(app, state=state)
    assert tasks.send_signup_mail.apply(args=[subscriber_id]).successful()
    got = smtp_server.to(READER)
    if state == "confirmed":
        assert [m["Subject"] for m in got] == ["You are already subscribed to The Daily Edition"]
        assert got[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert got == []
    assert tokens(app) == 0


@pytest.fixture
def committed_token_hashes(app):
    """Reads the confirmation tokens on a connection of its own: only what is committed."""
    engine = db.make_engine(app.config["DATABASE_URL"])

    def read() -> set[str]:
        with engine.connect() as connection:
            return set(connection.scalars(select(ConfirmationToken.token_hash)))

    yield read
    engine.dispose()


@pytest.mark.parametrize("task", ["signup", "signup_mail"])
def test_the_token_is_committed_before_its_mail_leaves(app, celery, smtp_server, committed_token_hashes,
                                                       task):
    seen_by_the_server = []
    smtp_server.fault = lambda rcpt: seen_by_the_server.append(committed_token_hashes())  # at RCPT

    if task == "signup":
        result = tasks.sign_up.apply(args=queued_signup(app))
    else:
        result = tasks.send_signup_mail.apply(args=[sign_up(app)])

    assert result.successful(), result.traceback
    [msg] = smtp_server.to(READER)
    [committed] = seen_by_the_server
    assert hashlib.sha256(confirm_token(msg).encode()).hexdigest() in committed


def test_a_transient_failure_is_retried_and_only_the_sent_token_is_kept(app, celery, smtp_server):
    answers = iter(["451 4.3.0 try again later"])
    smtp_server.fault = lambda rcpt: next(answers, None)
    subscriber_id = sign_up(app)
    result = tasks.send_signup_mail.apply(args=[subscriber_id])
    assert result.successful(), result.traceback
    [msg] = smtp_server.to(READER)
    assert tokens(app) == 1  # the failed attempt's token was withdrawn
    with app.app_context():
        assert subscribers.check_confirmation(db.session(), confirm_token(msg)).id == subscriber_id
    assert (rows(app, BounceEvent), rows(app, Suppression)) == (0, 0)  # a 4xx is no bounce


def test_a_lasting_transient_failure_gives_up_after_the_retries(app, celery, smtp_server):
    attempts = []
    smtp_server.fault = lambda rcpt: attempts.append(rcpt) or "421 4.7.0 throttled"
    subscriber_id = sign_up(app)
    result = tasks.send_signup_mail.apply(args=[subscriber_id])
    assert result.failed() and isinstance(result.result, TransientSendError)
    assert len(attempts) == 1 + tasks.send_signup_mail.max_retries
    assert tokens(app) == 0


def test_a_permanent_failure_is_logged_by_hash_and_not_retried(app, celery, smtp_server, caplog):
    attempts = []
    smtp_server.fault = lambda rcpt: attempts.append(rcpt) or "550 5.1.1 no such mailbox"
    subscriber_id = sign_up(app)
    with caplog.at_level(logging.ERROR):
        result = tasks.send_signup_mail.apply(args=[subscriber_id])
    assert result.failed() and isinstance(result.result, tasks.MailRefused)
    assert len(attempts) == 1 and tokens(app) == 0
    digest = email_hash(READER)
    assert digest in str(result.result) and READER not in str(result.result)
    ours = [r for r in caplog.records if r.name == "workers.tasks"]
    assert len(ours) == 1 and digest in ours[0].getMessage() and "550" in ours[0].getMessage()
    assert READER not in caplog.text


@pytest.mark.parametrize("mail, state", [("confirmation", "pending"), ("already subscribed", "confirmed"),
                                         ("welcome", "confirmed")])
def test_a_refused_address_is_recorded_as_a_hard_bounce_and_suppressed(app, celery, smtp_server, mail,
                                                                        state):
    smtp_server.fault = lambda rcpt: "550 5.1.1 <reader@example.org>: no such mailbox"
    subscriber_id = sign_up(app, state=state)
    task = tasks.send_welcome_mail if mail == "welcome" else tasks.send_signup_mail

    assert isinstance(task.apply(args=[subscriber_id]).result, tasks.MailRefused)

    with app.app_context():
        session = db.session()
        [bounce] = session.scalars(select(BounceEvent))
        [suppressed] = session.scalars(select(Suppression))
        assert (bounce.email_hash, bounce.kind) == (email_hash(READER), "hard")
        assert "550" in bounce.detail and READER not in bounce.detail
        assert (suppressed.email_hash, suppressed.reason) == (email_hash(READER), "hard_bounce")
    assert tokens(app) == 0

    smtp_server.fault = None  # the address is suppressed now: nothing more goes to it
    assert tasks.sign_up.apply(args=queued_signup(app)).successful()
    assert tasks.send_welcome_mail.apply(args=[subscriber_id]).successful()
    assert smtp_server.to(READER) == []


def test_a_refusal_of_the_whole_message_suppresses_nobody(app, celery, smtp_server):
    smtp_server.reject_data = "554 5.6.0 message content rejected"  # not the address's fault
    subscriber_id = sign_up(app)

    assert isinstance(tasks.send_signup_mail.apply(args=[subscriber_id]).result, tasks.MailRefused)

    assert (rows(app, BounceEvent), rows(app, Suppression), tokens(app)) == (0, 0, 0)


def test_the_welcome_task(app, celery, smtp_server):
    subscriber_id = sign_up(app, state="confirmed")
    assert tasks.send_welcome_mail.apply(args=[subscriber_id]).successful()
    [msg] = smtp_server.to(READER)
    assert msg["Subject"] == "Welcome to The Daily Edition"
    assert msg["List-Unsubscribe"].startswith("<http://newsletter.test/newsletter/unsubscribe/")


@pytest.mark.parametrize("state", ["pending", "unsubscribed", "suppressed"])
def test_no_welcome_unless_confirmed(app, celery, smtp_server, state):
    subscriber_id = sign_up(app, state=state)
    assert tasks.send_welcome_mail.apply(args=[subscriber_id]).successful()
    assert tasks.send_welcome_mail.apply(args=[subscriber_id + 100]).successful()
    assert smtp_server.to(READER) == []


# ---------------------------------------------------------------- a real worker

@pytest.mark.slow
def test_signup_confirm_welcome_through_a_real_worker(app, worker, smtp_server):
    proc = worker(concurrency=1)
    sign_up(app, "bounced@example.org", state="suppressed")
    with app.app_context():
        for email in ("bounced@example.org", READER):  # queued, recorded by the worker
            queue.publish(*subscribers.signup_task(email, CTX, TEXT))
        queue.celery_app(app).close()

    [confirmation] = smtp_server.wait_for(READER, timeout=60)
    assert confirmation["Subject"] == "Confirm your subscription to The Daily Edition", proc.log()[-3000:]
    raw = confirm_token(confirmation)
    assert f"http://newsletter.test/newsletter/confirm/{raw}" in confirmation.get_body(("html",)).get_content()

    # The worker commits the token before it sends the mail: a click the moment the mail
    # arrives finds it (no waiting).
    with app.app_context():
        session = db.session()
        reader = subscribers.confirm(session, raw, CTX, TEXT)
        session.commit()
        queue.celery_app(app).close()

    mails = smtp_server.wait_for(READER, count=2, timeout=60)
    assert len(mails) == 2, proc.log()[-3000:]
    welcome = mails[1]
    assert welcome["Subject"] == "Welcome to The Daily Edition"
    assert [p.get_content_type() for p in welcome.iter_parts()] == ["text/plain", "text/html"]
    assert re.fullmatch(r"<[^<>@\s]+@localhost>", welcome["Message-ID"])
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url, mailto = re.fullmatch(r"<(http://[^>]+)>, <(mailto:[^>]+)>", welcome["List-Unsubscribe"]).groups()
    assert mailto == "mailto:daily@localhost?subject=unsubscribe"
    token = url.removeprefix("http://newsletter.test/newsletter/unsubscribe/")
    with app.app_context():
        found = links.subscriber_for_token(db.session(), token, "unsubscribe", app.config["SECRET_KEY"])
        assert found.id == reader.id and found.state == "confirmed"
    assert smtp_server.to("bounced@example.org") == []
