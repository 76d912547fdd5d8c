"""subscribers: sign-up in every state, double opt-in tokens, sign-up mails and their cap,
unsubscribe, resubscribe, pause, export and erasure — on the real database and broker."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from newsletter import db, subscribers
from newsletter.addresses import email_hash
from newsletter.consent import DEFAULT_CONSENT_TEXT, ConsentContext, wording_version
from newsletter.emails import MailSettings
from newsletter.models import ConfirmationToken, ConsentRecord, Subscriber, Suppression
from newsletter.redis_url import client
from newsletter.subscribers import (ConfirmationError, TokenExpired, TokenInvalid, TokenUsed,
                                    confirm, signup)

TEXT = DEFAULT_CONSENT_TEXT
CTX = ConsentContext(ip="198.51.100.7", user_agent="Mozilla/5.0 (X11) Firefox/140.0",
                     page="http://newsletter.test/articles/harbour", article="harbour")
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
STATES = ["new", "pending", "confirmed", "unsubscribed", "suppressed"]


@pytest.fixture
def settings(app) -> MailSettings:
    return MailSettings.from_config(app.config)


@pytest.fixture
def make_subscriber(session):
    """A subscriber in `state` (pending, confirmed, unsubscribed, suppressed), committed."""

    def make(email: str = "reader@example.org", state: str = "pending") -> Subscriber:
        signup(session, email, CTX, TEXT)
        subscriber = subscribers.by_email(session, email)
        if state in ("confirmed", "unsubscribed"):
            subscriber.state, subscriber.confirmed_at = "confirmed", NOW - timedelta(days=30)
        if state == "unsubscribed":
            subscriber.state, subscriber.unsubscribed_at = "unsubscribed", NOW - timedelta(days=2)
        if state == "suppressed":
            session.add(Suppression(email_hash=subscriber.email_hash, reason="hard_bounce"))
        session.commit()
        return subscriber

    return make


def published(app) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in the test's broker, oldest first."""
    broker = client(app.config["REDIS_URL"])
    try:
        raw = reversed(broker.lrange("celery", 0, -1))
        bodies = [json.loads(m) for m in raw]
    finally:
        broker.close()
    return [(b["headers"]["task"], json.loads(base64.b64decode(b["body"]))[0]) for b in bodies]


def records(session, subscriber_id=None, action=None) -> list[ConsentRecord]:
    query = select(ConsentRecord).order_by(ConsentRecord.id)
    if subscriber_id is not None:
        query = query.where(ConsentRecord.subscriber_id == subscriber_id)
    if action is not None:
        query = query.where(ConsentRecord.action == action)
    return list(session.scalars(query))


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def confirm_token(msg) -> str:
    """The raw token of the confirmation link in a mail's text part."""
    text = msg.get_body(("plain",)).get_content()
    return re.search(r"/newsletter/confirm/([A-Za-z0-9_-]+)", text)[1]


def pending_with_token(session, settings, make_subscriber, email="reader@example.org", now=NOW):
    subscriber = make_subscriber(email)
    msg = subscribers.signup_mail(session, subscriber.id, settings, now=now)
    session.commit()
    return subscriber, confirm_token(msg)


# ---------------------------------------------------------------- lookups

def test_get_and_by_email(session, make_subscriber):
    reader = make_subscriber("Reader@example.org")
    assert subscribers.get(session, reader.id) is reader
    assert subscribers.get(session, reader.id + 1) is None
    assert subscribers.by_email(session, "Reader@example.org") is reader
    assert subscribers.by_email(session, "reader@example.org") is reader  # case variants too
    assert subscribers.by_email(session, "other@example.org") is None


def test_counts_by_state_names_every_state(session, make_subscriber):
    assert subscribers.counts_by_state(session) == {"pending": 0, "confirmed": 0, "unsubscribed": 0}
    for n, state in enumerate(["pending", "confirmed", "confirmed", "unsubscribed", "suppressed"]):
        make_subscriber(f"r{n}@example.org", state)
    assert subscribers.counts_by_state(session) == {"pending": 2, "confirmed": 2, "unsubscribed": 1}


def test_is_receiving(session, make_subscriber):
    reader = make_subscriber(state="confirmed")
    assert subscribers.is_receiving(reader, NOW)
    subscribers.pause(session, reader, 3, now=NOW)
    assert not subscribers.is_receiving(reader, NOW + timedelta(days=2, hours=23))
    assert subscribers.is_receiving(reader, NOW + timedelta(days=3))
    for state in ("pending", "unsubscribed"):
        assert not subscribers.is_receiving(make_subscriber(f"{state}@example.org", state), NOW)


# ---------------------------------------------------------------- sign-up

def test_a_new_address_becomes_a_pending_subscriber(session, app):
    signup(session, "reader@example.org", ConsentContext(source="api", ip="192.0.2.1"), TEXT)
    session.commit()
    reader = subscribers.by_email(session, "reader@example.org")
    assert (reader.state, reader.source, reader.email_hash) == (
        "pending", "api", email_hash("reader@example.org"))
    assert re.fullmatch(r"[0-9a-f]{32}", reader.token_key)
    assert reader.confirmed_at is None and reader.unsubscribed_at is None
    [record] = records(session, reader.id)
    assert (record.action, record.ip, record.source) == ("signup", "192.0.2.1", "api")
    assert record.version == wording_version(session, TEXT)


def test_the_signup_task_carries_everything_the_worker_needs(session):
    name, args = subscribers.signup_task("reader@example.org", CTX, TEXT, now=NOW)
    assert (name, args[1:]) == ("subscribers.signup", (
        "reader@example.org",
        {"ip": "198.51.100.7", "user_agent": "Mozilla/5.0 (X11) Firefox/140.0",
         "page": "http://newsletter.test/articles/harbour", "article": "harbour", "source": "form"},
        TEXT, "2026-11-25T08:00:00+00:00"))
    assert re.fullmatch(r"[0-9a-f]{32}", args[0])
    assert count(session, Subscriber) == 0  # recorded by the worker


def test_each_signup_task_has_a_request_id_of_its_own():
    ids = {subscribers.signup_task("reader@example.org", CTX, TEXT)[1][0] for _ in range(3)}
    assert len(ids) == 3


def test_a_rolled_back_signup_leaves_nothing(session, app):
    signup(session, "other@example.org", CTX, TEXT)
    session.rollback()
    assert count(session, Subscriber) == 0 and count(session, ConsentRecord) == 0
    assert published(app) == []


@pytest.mark.parametrize("state", STATES)
def test_signup_does_the_same_work_in_every_state(session, app, make_subscriber, state):
    if state != "new":
        make_subscriber("reader@example.org", state)
    before = {s.id: (s.state, s.confirmed_at, s.unsubscribed_at)
              for s in session.scalars(select(Subscriber))}
    records_before = count(session, ConsentRecord)

    subscriber_id = signup(session, "reader@example.org", CTX, TEXT, request_id="a" * 32, at=NOW)
    session.commit()

    reader = subscribers.by_email(session, "reader@example.org")
    assert subscriber_id == reader.id
    assert count(session, Subscriber) == 1
    assert count(session, ConsentRecord) == records_before + 1
    record = records(session, reader.id)[-1]
    assert (record.action, record.request_id, record.at) == ("signup", "a" * 32, NOW)
    assert published(app) == []  # the worker sends the mail itself
    if state != "new":  # the state never changes: an unsubscribed reader must confirm again
        assert (reader.state, reader.confirmed_at, reader.unsubscribed_at) == before[reader.id]


def test_a_request_is_recorded_once_however_often_it_comes(session):
    first = signup(session, "reader@example.org", CTX, TEXT, request_id="r" * 32)
    session.commit()
    again = signup(session, "reader@example.org", CTX, TEXT, request_id="r" * 32)
    session.commit()
    assert again == first
    assert count(session, Subscriber) == 1 and len(records(session, first)) == 1
    other = signup(session, "reader@example.org", CTX, TEXT, request_id="s" * 32)
    session.commit()
    assert other == first and len(records(session, first)) == 2


def test_a_request_redelivered_after_erasure_records_nothing(session):
    subscriber_id = signup(session, "reader@example.org", CTX, TEXT, request_id="r" * 32)
    session.commit()
    subscribers.erase(session, subscribers.get(session, subscriber_id))
    session.commit()
    assert signup(session, "reader@example.org", CTX, TEXT, request_id="r" * 32) is None
    session.commit()
    assert count(session, Subscriber) == 0 and count(session, ConsentRecord) == 1


def test_a_case_variant_signs_up_the_same_subscriber(session, make_subscriber):
    reader = make_subscriber("reader@example.org", "confirmed")
    signup(session, "READER@example.org", CTX, TEXT)
    session.commit()
    assert count(session, Subscriber) == 1
    assert len(records(session, reader.id, "signup")) == 2


def test_concurrent_signups_of_a_new_address_make_one_subscriber(app):
    n, barrier, errors = 4, threading.Barrier(4), []

    def sign_up():
        with app.app_context():
            s = db.session()
            try:
                barrier.wait(10)
                signup(s, "double@example.org", CTX, TEXT)
                s.commit()
            except Exception as e:  # collected: a thread must not fail silently
                errors.append(e)

    threads = [threading.Thread(target=sign_up) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with app.app_context():
        s = db.session()
        assert count(s, Subscriber) == 1 and count(s, ConsentRecord) == n


# ---------------------------------------------------------------- sign-up mails

@pytest.mark.parametrize("state", ["pending", "unsubscribed"])
def test_pending_and_unsubscribed_get_a_confirmation_mail(session, settings, make_subscriber, state):
    reader = make_subscriber(state=state)
    msg = subscribers.signup_mail(session, reader.id, settings, now=NOW)
    session.commit()
    assert msg["To"] == "reader@example.org" and msg["Subject"].startswith("Confirm")
    assert "List-Unsubscribe" not in msg  # not list mail
    raw = confirm_token(msg)
    assert f"http://newsletter.test/newsletter/confirm/{raw}" in msg.get_body(("html",)).get_content()
    [token] = session.scalars(select(ConfirmationToken))
    assert token.subscriber_id == reader.id and token.used_at is None
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert token.expires_at == NOW + timedelta(hours=48)
    assert reader.state == state


def test_the_token_is_random_enough_and_only_its_hash_is_stored(app, session, settings, make_subscriber):
    raws = set()
    for n in range(3):
        reader, raw = pending_with_token(session, settings, make_subscriber, f"r{n}@example.org")
        raws.add(raw)
        assert len(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))) >= 16  # >= 128 bits
    assert len(raws) == 3
    dump = []
    with db.engine(app).connect() as c:
        for table in db.Base.metadata.sorted_tables:
            dump += [str(tuple(row)) for row in c.execute(table.select())]
    assert not any(raw in row for raw in raws for row in dump)


def test_a_confirmed_address_gets_an_already_subscribed_mail(session, settings, make_subscriber):
    reader = make_subscriber(state="confirmed")
    msg = subscribers.signup_mail(session, reader.id, settings, now=NOW)
    assert msg["Subject"] == "You are already subscribed to The Daily Edition"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "http://newsletter.test/newsletter/unsubscribe/" in msg["List-Unsubscribe"]
    assert "http://newsletter.test/newsletter/manage/" in msg.get_body(("plain",)).get_content()
    assert count(session, ConfirmationToken) == 0


def test_a_suppressed_address_gets_no_mail(session, settings, make_subscriber):
    reader = make_subscriber(state="suppressed")
    assert subscribers.signup_mail(session, reader.id, settings, now=NOW) is None
    assert count(session, ConfirmationToken) == 0


def test_an_unknown_subscriber_gets_no_mail(session, settings):
    assert subscribers.signup_mail(session, 12345, settings) is None


def test_at_most_three_confirmation_mails_an_hour(session, settings, make_subscriber):
    reader = make_subscriber()
    sent = [subscribers.signup_mail(session, reader.id, settings, now=NOW + timedelta(minutes=m))
            for m in (0, 10, 20, 30, 59)]
    assert [m is not None for m in sent] == [True, True, True, False, False]
    assert subscribers.signup_mail(session, reader.id, settings, now=NOW + timedelta(minutes=61))
    assert count(session, ConfirmationToken) == 4


def test_the_cap_is_configurable(session, settings, make_subscriber):
    one = MailSettings(**(vars(settings) | {"mails_per_hour": 1, "confirm_hours": 2}))
    reader = make_subscriber()
    assert subscribers.signup_mail(session, reader.id, one, now=NOW) is not None
    assert subscribers.signup_mail(session, reader.id, one, now=NOW) is None
    [token] = session.scalars(select(ConfirmationToken))
    assert token.expires_at == NOW + timedelta(hours=2)


def test_already_subscribed_mails_are_capped_by_signups(session, settings, make_subscriber):
    reader = make_subscriber(state="confirmed")  # one sign-up recorded
    now = datetime.now(timezone.utc)
    assert subscribers.signup_mail(session, reader.id, settings, now=now) is not None
    for _ in range(2):
        signup(session, reader.email, CTX, TEXT)
    assert subscribers.signup_mail(session, reader.id, settings, now=now) is not None  # 3 sign-ups
    signup(session, reader.email, CTX, TEXT)
    assert subscribers.signup_mail(session, reader.id, settings, now=now) is None  # a 4th
    assert subscribers.signup_mail(session, reader.id, settings, now=now + timedelta(hours=2))


def test_a_fresh_token_each_time_while_pending(session, settings, make_subscriber):
    reader, first = pending_with_token(session, settings, make_subscriber)
    second = confirm_token(subscribers.signup_mail(session, reader.id, settings, now=NOW))
    session.commit()
    assert first != second
    assert subscribers.check_confirmation(session, first, now=NOW) is reader
    assert subscribers.check_confirmation(session, second, now=NOW) is reader


# ---------------------------------------------------------------- confirmation

def test_checking_a_token_does_not_use_it(session, settings, make_subscriber):
    reader, raw = pending_with_token(session, settings, make_subscriber)
    for _ in range(3):
        assert subscribers.check_confirmation(session, raw, now=NOW) is reader
    assert reader.state == "pending"
    assert session.scalars(select(ConfirmationToken)).one().used_at is None


def test_confirm(session, app, settings, make_subscriber):
    reader, raw = pending_with_token(session, settings, make_subscriber)
    later = NOW + timedelta(hours=1)
    ctx = ConsentContext(ip="203.0.113.5", user_agent="Safari", page="confirm page")
    queued = len(published(app))

    assert confirm(session, raw, ctx, TEXT, now=later) is reader
    session.commit()

    assert (reader.state, reader.confirmed_at, reader.unsubscribed_at) == ("confirmed", later, None)
    assert session.scalars(select(ConfirmationToken)).one().used_at == later
    record = records(session, reader.id)[-1]
    assert (record.action, record.ip, record.user_agent, record.at) == ("confirm", "203.0.113.5", "Safari", later)
    assert record.version == wording_version(session, TEXT)
    assert published(app)[queued:] == [("subscribers.welcome_mail", [reader.id])]


def test_a_token_works_once(session, settings, make_subscriber):
    reader, raw = pending_with_token(session, settings, make_subscriber)
    confirm(session, raw, CTX, TEXT, now=NOW)
    session.commit()
    for attempt in (lambda: confirm(session, raw, CTX, TEXT, now=NOW),
                    lambda: subscribers.check_confirmation(session, raw, now=NOW)):
        with pytest.raises(TokenUsed):
            attempt()
    assert len(records(session, reader.id, "confirm")) == 1


def test_confirming_uses_up_the_readers_older_tokens(session, settings, make_subscriber):
    reader, first = pending_with_token(session, settings, make_subscriber)
    second = confirm_token(subscribers.signup_mail(session, reader.id, settings, now=NOW))
    session.commit()
    confirm(session, second, CTX, TEXT, now=NOW)
    session.commit()
    with pytest.raises(TokenUsed):
        confirm(session, first, CTX, TEXT, now=NOW)


def test_an_expired_token_is_refused(session, settings, make_subscriber):
    reader, raw = pending_with_token(session, settings, make_subscriber)
    expiry = NOW + timedelta(hours=48)
    assert subscribers.check_confirmation(session, raw, now=expiry - timedelta(seconds=1)) is reader
    with pytest.raises(TokenExpired):
        subscribers.check_confirmation(session, raw, now=expiry)
    with pytest.raises(TokenExpired):
        confirm(session, raw, CTX, TEXT, now=expiry + timedelta(days=1))
    assert reader.state == "pending"


def test_a_token_expired_in_the_database_is_refused(session, settings, make_subscriber):
    reader, raw = pending_with_token(session, settings, make_subscriber, now=datetime.now(timezone.utc))
    session.scalars(select(ConfirmationToken)).one().expires_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    session.commit()
    with pytest.raises(TokenExpired):
        confirm(session, raw, CTX, TEXT)


@pytest.mark.parametrize("forged", [
    "A" * 43, "", "short", "x" * 5000, "../../etc/passwd", "abc def ghi jkl mno pqr",
    "Zm9yZ2VkLXRva2VuLWZvcmdlZC10b2tlbi1mb3JnZWQ", None, 12345,
])
def test_unknown_and_malformed_tokens_are_refused(session, settings, make_subscriber, forged):
    pending_with_token(session, settings, make_subscriber)
    with pytest.raises(TokenInvalid):
        subscribers.check_confirmation(session, forged, now=NOW)
    with pytest.raises(TokenInvalid):
        confirm(session, forged, CTX, TEXT, now=NOW)


def test_a_token_differing_in_one_character_is_refused(session, settings, make_subscriber):
    _, raw = pending_with_token(session, settings, make_subscriber)
    for forged in (raw[:-1] + ("A" if raw[-1] != "A" else "B"), raw.upper(), raw[:-1], raw + "A"):
        with pytest.raises(TokenInvalid):
            confirm(session, forged, CTX, TEXT, now=NOW)


def test_every_refusal_is_a_confirmation_error():
    assert all(issubclass(e, ConfirmationError) for e in (TokenInvalid, TokenExpired, TokenUsed))


def test_concurrent_confirmations_with_one_token_succeed_once(app, session, settings, make_subscriber):
    reader, raw = pending_with_token(session, settings, make_subscriber)
    barrier, outcomes = threading.Barrier(4), []

    def attempt():
        with app.app_context():
            s = db.session()
            barrier.wait(10)
            try:
                confirm(s, raw, CTX, TEXT, now=NOW)
                s.commit()
                outcomes.append("confirmed")
            except TokenUsed:
                s.rollback()
                outcomes.append("used")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["confirmed", "used", "used", "used"]
    with app.app_context():
        assert len(records(db.session(), reader.id, "confirm")) == 1


def test_an_unsubscribed_reader_confirms_again(session, settings, make_subscriber):
    reader = make_subscriber(state="unsubscribed")
    signup(session, reader.email, CTX, TEXT)
    session.commit()
    assert reader.state == "unsubscribed"
    raw = confirm_token(subscribers.signup_mail(session, reader.id, settings, now=NOW))
    session.commit()
    confirm(session, raw, CTX, TEXT, now=NOW)
    session.commit()
    assert (reader.state, reader.unsubscribed_at, reader.confirmed_at) == ("confirmed", None, NOW)


# ---------------------------------------------------------------- welcome mail

def test_the_welcome_mail_is_list_mail(session, settings, make_subscriber):
    reader = make_subscriber(state="confirmed")
    msg = subscribers.welcome_mail(session, reader.id, settings)
    assert msg["Subject"] == "Welcome to The Daily Edition"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"].startswith("<http://newsletter.test/newsletter/unsubscribe/")
    assert msg["List-Unsubscribe"].endswith(", <mailto:daily@localhost?subject=unsubscribe>")


@pytest.mark.parametrize("state", ["pending", "unsubscribed", "suppressed"])
def test_no_welcome_unless_confirmed_and_not_suppressed(session, settings, make_subscriber, state):
    reader = make_subscriber(state=state)
    if state == "suppressed":
        reader.state = "confirmed"
    assert subscribers.welcome_mail(session, reader.id, settings) is None
    assert subscribers.welcome_mail(session, reader.id + 99, settings) is None


# ---------------------------------------------------------------- unsubscribe, resubscribe

@pytest.mark.parametrize("state", ["pending", "confirmed"])
def test_unsubscribe(session, make_subscriber, state):
    reader = make_subscriber(state=state)
    ctx = ConsentContext(source="mail", user_agent="one-click")
    subscribers.unsubscribe(session, reader, ctx, now=NOW)
    session.commit()
    assert (reader.state, reader.unsubscribed_at) == ("unsubscribed", NOW)
    [record] = records(session, reader.id, "unsubscribe")
    assert (record.source, record.version, record.user_agent, record.at) == ("mail", None, "one-click", NOW)


def test_unsubscribing_twice_changes_nothing(session, make_subscriber):
    reader = make_subscriber(state="confirmed")
    subscribers.unsubscribe(session, reader, CTX, now=NOW)
    subscribers.unsubscribe(session, reader, CTX, now=NOW + timedelta(hours=1))
    session.commit()
    assert reader.unsubscribed_at == NOW
    assert len(records(session, reader.id, "unsubscribe")) == 1


def test_resubscribe_from_the_signed_page(session, make_subscriber):
    reader = make_subscriber(state="unsubscribed")
    first_confirmed = reader.confirmed_at
    subscribers.resubscribe(session, reader, CTX, TEXT, now=NOW)
    session.commit()
    assert (reader.state, reader.unsubscribed_at, reader.confirmed_at) == ("confirmed", None, first_confirmed)
    [record] = records(session, reader.id, "resubscribe")
    assert record.version == wording_version(session, TEXT)
    subscribers.resubscribe(session, reader, CTX, TEXT, now=NOW)  # already on the list
    assert len(records(session, reader.id, "resubscribe")) == 1


def test_consent_records_after_each_step(session, settings, make_subscriber):
    reader, raw = pending_with_token(session, settings, make_subscriber)
    confirm(session, raw, CTX, TEXT, now=NOW)
    subscribers.unsubscribe(session, reader, CTX, now=NOW)
    subscribers.resubscribe(session, reader, CTX, TEXT, now=NOW)
    session.commit()
    assert [r.action for r in records(session, reader.id)] == ["signup", "confirm", "unsubscribe", "resubscribe"]


# ---------------------------------------------------------------- pause

def test_pause_and_resume(session, make_subscriber):
    reader = make_subscriber(state="confirmed")
    subscribers.pause(session, reader, 14, now=NOW)
    session.commit()
    assert reader.paused_until == NOW + timedelta(days=14)
    assert not subscribers.is_receiving(reader, NOW + timedelta(days=1))
    subscribers.resume(session, reader)
    session.commit()
    assert reader.paused_until is None and subscribers.is_receiving(reader, NOW)


@pytest.mark.parametrize("days", [0, -1, 366, 10_000, 1.5, True, "3", None])
def test_a_pause_lasts_1_to_365_days(session, make_subscriber, days):
    reader = make_subscriber(state="confirmed")
    with pytest.raises(ValueError):
        subscribers.pause(session, reader, days, now=NOW)
    assert reader.paused_until is None


@pytest.mark.parametrize("days", [1, 365])
def test_pause_limits_are_inclusive(session, make_subscriber, days):
    reader = make_subscriber(state="confirmed")
    subscribers.pause(session, reader, days, now=NOW)
    assert reader.paused_until == NOW + timedelta(days=days)


# ---------------------------------------------------------------- export and erasure

def test_export_holds_the_subscriber_and_every_consent_with_its_wording(session, settings, make_subscriber):
    now = datetime.now(timezone.utc)
    reader, raw = pending_with_token(session, settings, make_subscriber, now=now)
    confirm(session, raw, CTX, "Other wording.", now=now + timedelta(minutes=1))
    subscribers.pause(session, reader, 7, now=now)
    subscribers.unsubscribe(session, reader, CTX, now=now + timedelta(minutes=2))
    session.commit()

    data = json.loads(json.dumps(subscribers.export_data(session, reader)))

    assert {k: data[k] for k in ("id", "email", "state", "source", "suppressed")} == {
        "id": reader.id, "email": "reader@example.org", "state": "unsubscribed", "source": "form",
        "suppressed": False}
    assert datetime.fromisoformat(data["paused_until"]) == now + timedelta(days=7)
    assert datetime.fromisoformat(data["confirmed_at"]) == now + timedelta(minutes=1)
    assert [(r["action"], r["text"]) for r in data["consent_records"]] == [
        ("signup", TEXT), ("confirm", "Other wording."), ("unsubscribe", None)]
    first = data["consent_records"][0]
    assert (first["ip"], first["user_agent"], first["page"], first["article"]) == (
        CTX.ip, CTX.user_agent, CTX.page, CTX.article)
    assert first["version"] == hashlib.sha256(TEXT.encode()).hexdigest()


def test_erase_removes_personal_data_and_keeps_a_hashed_suppression(session, settings, make_subscriber):
    reader, raw = pending_with_token(session, settings, make_subscriber)
    confirm(session, raw, CTX, TEXT, now=NOW)
    other = make_subscriber("other@example.org")
    session.commit()
    reader_id, digest = reader.id, reader.email_hash

    subscribers.erase(session, reader)
    session.commit()

    assert subscribers.get(session, reader_id) is None
    assert subscribers.by_email(session, "reader@example.org") is None
    assert session.scalars(select(ConfirmationToken).where(ConfirmationToken.subscriber_id == reader_id)).all() == []
    kept = list(session.scalars(select(ConsentRecord).where(ConsentRecord.email_hash == digest).order_by(ConsentRecord.id)))
    assert [r.action for r in kept] == ["signup", "confirm"]
    assert all((r.subscriber_id, r.ip, r.user_agent) == (None, "", "") for r in kept)
    assert all(r.version for r in kept)  # the proof of what was agreed stays
    assert session.scalars(select(Suppression)).one().reason == "erased"
    assert records(session, other.id)[0].ip == CTX.ip  # others untouched
    with pytest.raises(TokenInvalid):
        confirm(session, raw, CTX, TEXT, now=NOW)


def test_erasing_a_suppressed_address_keeps_its_reason(session, make_subscriber):
    reader = make_subscriber(state="suppressed")
    subscribers.erase(session, reader)
    session.commit()
    assert [(s.email_hash, s.reason) for s in session.scalars(select(Suppression))] == [
        (email_hash("reader@example.org"), "hard_bounce")]


def test_an_erased_address_signing_up_again_gets_no_mail(session, settings, make_subscriber):
    subscribers.erase(session, make_subscriber(state="confirmed"))
    session.commit()
    signup(session, "reader@example.org", CTX, TEXT)
    session.commit()
    again = subscribers.by_email(session, "reader@example.org")
    assert again.state == "pending"
    assert subscribers.signup_mail(session, again.id, settings, now=NOW) is None
