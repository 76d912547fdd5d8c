"""subscriber_io: CSV import (idempotent, line-numbered errors, suppression respected) and export."""
from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from newsletter import subscriber_io, subscribers, suppression
from newsletter.addresses import email_hash
from newsletter.consent import ConsentContext, record_consent
from newsletter.models import ConsentRecord, Subscriber
from newsletter.subscriber_io import IMPORT_CONSENT_TEXT, ImportFileError, import_csv

NOW = datetime(2025, 11, 11, 9, 0, tzinfo=timezone.utc)


def run_import(session, text: str, confirmed: bool = False, **kwargs):
    return import_csv(session, io.StringIO(text, newline=""), confirmed, NOW, **kwargs)


def everyone(session) -> dict[str, Subscriber]:
    return {s.email: s for s in session.scalars(select(Subscriber))}


def add_subscriber(session, email, state="confirmed", name="") -> Subscriber:
    row = Subscriber(email=email, email_hash=email_hash(email), state=state, name=name,
                     token_key="k" * 32, source="form")
    session.add(row)
    session.flush()
    return row


def counts(report) -> tuple:
    return report.added, report.updated, report.skipped, len(report.invalid)


# ---------------------------------------------------------------- import

def test_new_addresses_are_added_pending_from_the_import(session):
    report = run_import(session, "email,name\na@example.org,Ann\nb@example.org,\n")
    assert counts(report) == (2, 0, 0, 0)
    rows = everyone(session)
    assert [(s.state, s.source, s.name, s.created_at, s.confirmed_at) for s in rows.values()] == [
        ("pending", "import", "Ann", NOW, None), ("pending", "import", "", NOW, None)]
    assert rows["a@example.org"].email_hash == email_hash("a@example.org")
    assert len(rows["a@example.org"].token_key) == 32
    assert session.scalar(select(func.count()).select_from(ConsentRecord)) == 0


def test_an_email_column_is_required(session):
    with pytest.raises(ImportFileError, match="email"):
        run_import(session, "name,address\nAnn,a@example.org\n")
    with pytest.raises(ImportFileError, match="empty"):
        run_import(session, "")


def test_invalid_rows_are_reported_with_their_line_numbers(session):
    text = ("Email Address,Name,State,created_at\n"
            "good@example.org,Good,,\n"
            "no-at-sign,Bad,,\n"
            ",Nobody,,\n"
            "\"two\nlines@example.org\",Split,,\n"
            "x@example.org,X,gone,\n"
            "y@example.org,Y,,last week\n"
            f"z@example.org,{'n' * 201},,\n"
            "\n"
            "fine@example.org,Fine,,2024-01-02T03:04:05Z\n")
    report = run_import(session, text)
    assert [line for line, _ in report.invalid] == [3, 4, 6, 7, 8, 9]
    messages = dict(report.invalid)
    assert "valid email address" in messages[3]
    assert "Enter your email address" in messages[4]
    assert "single line" in messages[6]
    assert "unknown state 'gone'" in messages[7]
    assert "ISO 8601" in messages[8] and "200 characters" in messages[9]
    assert counts(report) == (2, 0, 0, 6)
    assert everyone(session)["fine@example.org"].created_at == datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_control_characters_in_names_are_refused_and_whitespace_folded(session):
    report = run_import(session, "email,name\na@example.org,Ann\x00e\nb@example.org,\"  Bo\t  Bo \"\n")
    assert report.invalid == [(2, "the name holds control characters")]
    assert everyone(session)["b@example.org"].name == "Bo Bo"


def test_duplicates_within_the_file_are_skipped(session):
    text = "email,name\na@example.org,First\nA@EXAMPLE.ORG,Second\n a@example.org ,Third\n"
    report = run_import(session, text)
    assert counts(report) == (1, 0, 2, 0)
    assert report.skipped_lines == [(3, "duplicate of an earlier line"),
                                    (4, "duplicate of an earlier line")]
    assert [s.name for s in everyone(session).values()] == ["First"]


def test_known_addresses_get_their_name_updated_and_keep_their_state(session):
    add_subscriber(session, "a@example.org", "unsubscribed", name="Old")
    add_subscriber(session, "B@example.org", "pending", name="Bee")
    report = run_import(session, "email,name\na@example.org,New\nb@example.org,Bee\n", confirmed=True)
    assert counts(report) == (0, 1, 1, 0) and report.skipped_lines == []
    rows = everyone(session)
    assert (rows["a@example.org"].name, rows["a@example.org"].state) == ("New", "unsubscribed")
    assert rows["B@example.org"].state == "pending" and len(rows) == 2


def test_an_empty_name_does_not_erase_a_known_one(session):
    add_subscriber(session, "a@example.org", name="Ann")
    assert counts(run_import(session, "email,name\na@example.org,\n")) == (0, 0, 1, 0)
    assert everyone(session)["a@example.org"].name == "Ann"


def test_importing_twice_adds_nothing(session):
    text = "email,name\na@example.org,Ann\nb@example.org,Bob\nbad,\n"
    assert counts(run_import(session, text, confirmed=True)) == (2, 0, 0, 1)
    assert counts(run_import(session, text, confirmed=True)) == (0, 0, 2, 1)
    assert len(everyone(session)) == 2
    assert session.scalar(select(func.count()).select_from(ConsentRecord)) == 2


def test_suppressed_and_erased_addresses_are_skipped_and_reported(session):
    suppression.record_report(session, "bounced@example.org", "hard", NOW)
    subscribers.erase(session, add_subscriber(session, "erased@example.org"))
    add_subscriber(session, "complained@example.org", name="C")
    suppression.record_report(session, "complained@example.org", "complaint", NOW)
    text = ("email,name\nbounced@example.org,\nErased@example.org,\n"
            "complained@example.org,New name\nnew@example.org,\n")
    report = run_import(session, text, confirmed=True)
    assert counts(report) == (1, 0, 3, 0)
    assert [line for line, _ in report.skipped_lines] == [2, 3, 4]
    assert all("suppressed" in why for _, why in report.skipped_lines)
    rows = everyone(session)
    assert sorted(rows) == ["complained@example.org", "new@example.org"]
    assert rows["complained@example.org"].name == "C"


def test_confirmed_imports_record_the_import_as_consent(session):
    report = run_import(session, "email\na@example.org\n", confirmed=True, source_name="list.csv")
    assert counts(report) == (1, 0, 0, 0)
    reader = everyone(session)["a@example.org"]
    assert (reader.state, reader.confirmed_at, reader.source) == ("confirmed", NOW, "import")
    record = session.scalar(select(ConsentRecord))
    assert (record.subscriber_id, record.email_hash, record.action, record.source, record.page) == (
        reader.id, reader.email_hash, "import", "import", "list.csv")
    assert record.version == hashlib.sha256(IMPORT_CONSENT_TEXT.encode()).hexdigest()


def test_the_state_column_keeps_leavers_out_and_pending_pending(session):
    text = ("email,status\nleft@example.org,unsubscribed\nwaiting@example.org,Pending\n"
            "sub@example.org,subscribed\nyes@example.org,confirmed\n")
    report = run_import(session, text, confirmed=True)
    assert counts(report) == (3, 0, 1, 0)
    assert report.skipped_lines == [(2, "unsubscribed in the file: not added")]
    states = {email: s.state for email, s in everyone(session).items()}
    assert states == {"waiting@example.org": "pending", "sub@example.org": "confirmed",
                      "yes@example.org": "confirmed"}
    assert session.scalar(select(func.count()).select_from(ConsentRecord)) == 2


def test_unicode_and_idn_addresses(session):
    text = ("email,name\n"
            "Jörg@Bücher.example,Jörg\n"
            "jörg@xn--bcher-kva.example,Punycode twin\n"
            "用户@例子.广告,Unicode\n"
            "δοκιμή@παράδειγμα.δοκιμή,Greek\n")
    report = run_import(session, text)
    assert counts(report) == (3, 0, 1, 0)
    assert sorted(everyone(session)) == sorted(["Jörg@bücher.example", "用户@例子.广告",
                                                "δοκιμή@παράδειγμα.δοκιμή"])


def test_semicolons_and_a_byte_order_mark_are_understood(session):
    report = run_import(session, "\ufeffE-mail;Name\na@example.org;Ann, the first\n")
    assert counts(report) == (1, 0, 0, 0)
    assert everyone(session)["a@example.org"].name == "Ann, the first"


def test_large_files_go_in_chunks(session):
    rows = "".join(f"reader{n}@example.org,Reader {n}\n" for n in range(2500))
    chunks = []
    report = run_import(session, "email,name\n" + rows,
                        checkpoint=lambda: chunks.append(session.commit()))
    assert counts(report) == (2500, 0, 0, 0) and len(chunks) == 3
    assert session.scalar(select(func.count()).select_from(Subscriber)) == 2500


# ---------------------------------------------------------------- export

def read_export(session) -> list[dict]:
    out = io.StringIO(newline="")
    written = subscriber_io.export_csv(session, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert written == len(rows)
    return rows


def test_export_holds_everything_about_every_subscriber(session):
    reader = add_subscriber(session, "a@example.org", "confirmed", name="Ann, \"A\"")
    reader.confirmed_at = NOW
    ctx = ConsentContext(ip="203.0.113.9", user_agent="Firefox", page="/newsletter",
                         article="story-1", source="form")
    record_consent(session, reader, "signup", ctx, "I agree.")
    add_subscriber(session, "b@example.org", "pending")
    suppression.record_report(session, "b@example.org", "hard", NOW)
    rows = read_export(session)
    assert list(rows[0]) == list(subscriber_io.EXPORT_COLUMNS)
    first, second = rows
    assert (first["email"], first["name"], first["state"], first["confirmed_at"]) == (
        "a@example.org", "Ann, \"A\"", "confirmed", NOW.isoformat())
    assert (first["suppressed"], first["suppression_reason"], first["unsubscribed_at"]) == (
        "false", "", "")
    [consent] = json.loads(first["consent"])
    assert consent | {"at": None} == {
        "action": "signup", "at": None, "version": hashlib.sha256(b"I agree.").hexdigest(),
        "source": "form", "page": "/newsletter", "article": "story-1", "ip": "203.0.113.9",
        "user_agent": "Firefox"}
    assert (second["suppressed"], second["suppression_reason"], second["consent"]) == (
        "true", "hard_bounce", "[]")


def test_export_streams_past_one_chunk(session):
    for n in range(subscriber_io.CHUNK + 5):
        session.add(Subscriber(email=f"r{n}@example.org", email_hash=email_hash(f"r{n}@example.org"),
                               token_key="k" * 32))
    session.flush()
    rows = read_export(session)
    assert len(rows) == subscriber_io.CHUNK + 5
    assert rows[-1]["email"] == f"r{subscriber_io.CHUNK + 4}@example.org"


def test_importing_an_export_changes_nothing(session):
    run_import(session, "email,name\na@example.org,Ann\nb@example.org,Bob\nc@example.org,\n",
               confirmed=True)
    subscribers.unsubscribe(session, everyone(session)["b@example.org"], ConsentContext(source="mail"))
    suppression.record_report(session, "c@example.org", "hard", NOW)
    out = io.StringIO(newline="")
    subscriber_io.export_csv(session, out)
    before = session.scalar(select(func.count()).select_from(ConsentRecord))

    report = run_import(session, out.getvalue(), confirmed=True)

    assert counts(report) == (0, 0, 3, 0)
    assert session.scalar(select(func.count()).select_from(ConsentRecord)) == before
    assert {e: s.state for e, s in everyone(session).items()} == {
        "a@example.org": "confirmed", "b@example.org": "unsubscribed", "c@example.org": "confirmed"}
