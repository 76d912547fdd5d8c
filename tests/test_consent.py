"""consent: wording versions (stored once, race-safe) and consent records."""
from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from newsletter import db
from newsletter.addresses import email_hash
from newsletter.config import DEFAULTS
from newsletter.consent import (DEFAULT_CONSENT_TEXT, ConsentContext, configured_text,
                                record_consent, wording_version)
from newsletter.db import insert_ignoring_duplicate
from newsletter.models import ConsentRecord, ConsentText, Subscriber


def subscriber(session, email="reader@example.org") -> Subscriber:
    row = Subscriber(email=email, email_hash=email_hash(email), token_key="k" * 32)
    session.add(row)
    session.flush()
    return row


def texts(session) -> dict[str, str]:
    return dict(session.execute(select(ConsentText.version, ConsentText.text)).all())


# ---------------------------------------------------------------- wording

def test_the_default_wording_is_the_configured_default(app):
    assert DEFAULTS["CONSENT_TEXT"] == DEFAULT_CONSENT_TEXT
    assert configured_text(app.config) == DEFAULT_CONSENT_TEXT
    assert configured_text({"CONSENT_TEXT": "Yes, mail me."}) == "Yes, mail me."
    assert configured_text({"CONSENT_TEXT": ""}) == DEFAULT_CONSENT_TEXT


def test_the_version_is_the_sha256_of_the_exact_text_and_the_text_is_kept(session):
    version = wording_version(session, DEFAULT_CONSENT_TEXT)
    assert version == hashlib.sha256(DEFAULT_CONSENT_TEXT.encode()).hexdigest()
    session.commit()
    assert texts(session) == {version: DEFAULT_CONSENT_TEXT}


def test_a_wording_is_stored_once(session):
    first = wording_version(session, "Mail me the news.")
    session.commit()
    second = wording_version(session, "Mail me the news.")
    session.commit()
    assert first == second
    assert session.scalar(select(func.count()).select_from(ConsentText)) == 1


def test_any_change_of_wording_is_a_new_version(session):
    versions = {wording_version(session, text) for text in
                ["Mail me the news.", "Mail me the news. ", "Mail me the News.", "Mail me thé news."]}
    session.commit()
    assert len(versions) == 4 and set(texts(session)) == versions


def test_a_wording_stored_meanwhile_by_another_process_is_no_error(app, session):
    version = hashlib.sha256(b"Raced.").hexdigest()
    with app.app_context():  # another session, committed before ours inserts
        other = db.session()
        other.add(ConsentText(version=version, text="Raced."))
        other.commit()
    insert_ignoring_duplicate(session, ConsentText, {"version": version, "text": "Raced."}, "version")
    session.commit()
    assert texts(session) == {version: "Raced."}


def test_concurrent_first_uses_of_a_wording_all_succeed(app):
    barrier, errors, count = threading.Barrier(6), [], 6

    def use():
        with app.app_context():
            s = db.session()
            try:
                barrier.wait(10)
                wording_version(s, "Brand new wording.")
                s.commit()
            except Exception as e:  # reported below, the thread must not die silently
                errors.append(e)

    threads = [threading.Thread(target=use) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with app.app_context():
        assert list(texts(db.session()).values()) == ["Brand new wording."]


# ---------------------------------------------------------------- records

def test_a_record_keeps_what_where_when_and_the_wording(session):
    reader = subscriber(session)
    ctx = ConsentContext(ip="203.0.113.9", user_agent="Firefox/140", page="/articles/harbour",
                         article="harbour", source="form")
    record = record_consent(session, reader, "signup", ctx, DEFAULT_CONSENT_TEXT)
    session.commit()
    stored = session.get(ConsentRecord, record.id)
    assert (stored.subscriber_id, stored.email_hash, stored.action) == (reader.id, reader.email_hash, "signup")
    assert (stored.ip, stored.user_agent, stored.page, stored.article, stored.source) == (
        "203.0.113.9", "Firefox/140", "/articles/harbour", "harbour", "form")
    assert stored.version == wording_version(session, DEFAULT_CONSENT_TEXT)
    assert stored.at.tzinfo is not None


def test_an_unsubscribe_record_has_no_wording(session):
    record = record_consent(session, subscriber(session), "unsubscribe", ConsentContext(source="mail"))
    assert record.version is None


def test_long_values_are_cut_to_their_columns(session):
    ctx = ConsentContext(ip="1" * 100, user_agent="U" * 5000, page="/p" * 1000, article="a" * 500)
    record = record_consent(session, subscriber(session), "signup", ctx, "Words.")
    session.commit()
    stored = session.get(ConsentRecord, record.id)
    assert (len(stored.ip), len(stored.user_agent), len(stored.page), len(stored.article)) == (64, 500, 1000, 120)


def test_nuls_are_dropped_from_what_a_request_said(session):
    # Any client can put a NUL in a form field, a header or JSON; PostgreSQL refuses it in text
    # (a failed sign-up task, a 500 on confirming), so the record keeps the rest.
    ctx = ConsentContext(ip="203.0.113.9\x00", user_agent="Fire\x00fox", page="/p\x00", article="\x00harbour")
    record = record_consent(session, subscriber(session), "signup", ctx, "Words.")
    session.commit()
    stored = session.get(ConsentRecord, record.id)
    assert (stored.ip, stored.user_agent, stored.page, stored.article) == ("203.0.113.9", "Firefox", "/p", "harbour")


@pytest.mark.parametrize("action, source", [("subscribe", "form"), ("signup", "web"), ("", "form")])
def test_unknown_actions_and_sources_are_refused(session, action, source):
    with pytest.raises(ValueError):
        record_consent(session, subscriber(session), action, ConsentContext(source=source), "Words.")
    assert session.scalar(select(func.count()).select_from(ConsentRecord)) == 0


def test_every_action_and_source_is_accepted(session):
    reader = subscriber(session)
    for action in ("signup", "confirm", "import", "resubscribe", "unsubscribe"):
        for source in ("form", "api", "import", "mail"):
            record_consent(session, reader, action, ConsentContext(source=source), "Words.")
    session.commit()
    assert session.scalar(select(func.count()).select_from(ConsentRecord)) == 20


def test_the_context_is_immutable():
    with pytest.raises(AttributeError):
        ConsentContext().ip = "1.2.3.4"  # type: ignore[misc]


def test_a_record_can_be_dated(session):
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    record = record_consent(session, subscriber(session), "import", ConsentContext(source="import"),
                            "Words.", at=moment)
    session.commit()
    assert session.get(ConsentRecord, record.id).at == moment
