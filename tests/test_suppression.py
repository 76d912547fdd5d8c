"""suppression: the list, the bounce and complaint rules, and the report formats."""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from newsletter import suppression
from newsletter.addresses import email_hash
from newsletter.models import BounceEvent, ConsentRecord, Subscriber, Suppression
from newsletter.suppression import Report, ReportError, record_report

T0 = datetime(2025, 11, 1, 12, 0, tzinfo=timezone.utc)
ADDRESS = "reader@example.org"


def add_subscriber(session, email=ADDRESS, state="confirmed") -> Subscriber:
    row = Subscriber(email=email, email_hash=email_hash(email), state=state, token_key="k" * 32)
    session.add(row)
    session.flush()
    return row


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


def events(session) -> int:
    return session.scalar(select(func.count()).select_from(BounceEvent))


# ---------------------------------------------------------------- the list

def test_suppress_is_idempotent_and_keeps_the_first_reason(session):
    digest = email_hash(ADDRESS)
    first = suppression.suppress(session, digest, "manual")
    again = suppression.suppress(session, digest, "hard_bounce")
    assert again.id == first.id and again.reason == "manual"
    assert session.scalar(select(func.count()).select_from(Suppression)) == 1


def test_unknown_reasons_are_refused(session):
    with pytest.raises(suppression.UnknownReason):
        suppression.suppress(session, email_hash(ADDRESS), "because")


def test_is_suppressed_matches_any_spelling_of_the_address(session):
    assert not suppression.is_suppressed(session, ADDRESS)
    suppression.suppress(session, email_hash(ADDRESS), "manual")
    assert suppression.is_suppressed(session, ADDRESS)
    assert suppression.is_suppressed(session, "  Reader@EXAMPLE.org ")
    assert suppression.is_hash_suppressed(session, email_hash(ADDRESS))
    assert not suppression.is_suppressed(session, "other@example.org")


def test_an_erased_address_is_suppressed(session):
    from newsletter import subscribers

    subscribers.erase(session, add_subscriber(session))
    assert suppression.is_suppressed(session, ADDRESS)


def test_counts_has_every_state_and_the_suppressed(session):
    add_subscriber(session, "a@example.org", "pending")
    add_subscriber(session, "b@example.org", "confirmed")
    add_subscriber(session, "c@example.org", "confirmed")
    suppression.suppress(session, email_hash("gone@example.org"), "erased")
    assert suppression.counts(session) == {
        "pending": 1, "confirmed": 2, "unsubscribed": 0, "suppressed": 1}


# ---------------------------------------------------------------- the rules

def test_one_hard_bounce_suppresses(session):
    outcome = record_report(session, ADDRESS, "hard", T0, "550 5.1.1 user unknown")
    assert outcome == suppression.ReportOutcome(stored=True, suppressed=True)
    assert session.scalar(select(Suppression.reason)) == "hard_bounce"
    event = session.scalar(select(BounceEvent))
    assert (event.email_hash, event.kind, event.at, event.detail) == (
        email_hash(ADDRESS), "hard", T0, "550 5.1.1 user unknown")


def test_a_hard_bounce_does_not_unsubscribe(session):
    reader = add_subscriber(session)
    assert not record_report(session, ADDRESS, "hard", T0).unsubscribed
    assert reader.state == "confirmed"


def test_three_soft_bounces_within_30_days_suppress(session):
    assert not record_report(session, ADDRESS, "soft", days(0)).suppressed
    assert not record_report(session, ADDRESS, "soft", days(12)).suppressed
    assert not suppression.is_suppressed(session, ADDRESS)
    assert record_report(session, ADDRESS, "soft", days(30)).suppressed
    assert session.scalar(select(Suppression.reason)) == "soft_bounces"


def test_three_soft_bounces_spread_over_40_days_do_not(session):
    for n in (0, 20, 40):
        assert not record_report(session, ADDRESS, "soft", days(n)).suppressed
    assert not suppression.is_suppressed(session, ADDRESS)
    assert events(session) == 3


def test_soft_bounces_of_other_addresses_do_not_add_up(session):
    for n, email in enumerate(["a@example.org", "b@example.org", "c@example.org"]):
        record_report(session, email, "soft", days(n))
    assert session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_a_late_report_that_fills_a_window_suppresses(session):
    # Reported in the order 0, 25, then the late one of day 10: 0-10-25 is within 30 days.
    record_report(session, ADDRESS, "soft", days(0))
    record_report(session, ADDRESS, "soft", days(25))
    assert record_report(session, ADDRESS, "soft", days(10)).suppressed


def test_a_late_report_counts_with_later_ones(session):
    # 35 and 50 are in; the late report of day 28 makes 28-35-50 (22 days).
    record_report(session, ADDRESS, "soft", days(35))
    record_report(session, ADDRESS, "soft", days(50))
    assert record_report(session, ADDRESS, "soft", days(28)).suppressed


def test_out_of_order_reports_far_apart_do_not_suppress(session):
    for n in (60, 0, 31):
        assert not record_report(session, ADDRESS, "soft", days(n)).suppressed


def test_a_complaint_suppresses_and_unsubscribes(session):
    reader = add_subscriber(session)
    outcome = record_report(session, ADDRESS, "complaint", T0, "abuse report")
    assert outcome == suppression.ReportOutcome(stored=True, suppressed=True, unsubscribed=True)
    assert reader.state == "unsubscribed" and reader.unsubscribed_at is not None
    assert session.scalar(select(Suppression.reason)) == "complaint"
    record = session.scalar(select(ConsentRecord))
    assert (record.subscriber_id, record.action, record.source) == (reader.id, "unsubscribe", "mail")


def test_a_complaint_about_an_unknown_address_only_suppresses(session):
    outcome = record_report(session, "stranger@example.org", "complaint", T0)
    assert (outcome.suppressed, outcome.unsubscribed) == (True, False)


def test_a_complaint_about_someone_who_left_unsubscribes_nobody(session):
    add_subscriber(session, state="unsubscribed")
    outcome = record_report(session, ADDRESS, "complaint", T0)
    assert (outcome.suppressed, outcome.unsubscribed) == (True, False)
    assert session.scalar(select(func.count()).select_from(ConsentRecord)) == 0


def test_duplicate_reports_are_stored_once(session):
    first = record_report(session, ADDRESS, "soft", T0)
    again = record_report(session, ADDRESS, "soft", T0, "the same report, sent twice")
    assert first.stored and again == suppression.ReportOutcome(stored=False)
    # Two more copies of one report are still one soft bounce.
    record_report(session, ADDRESS, "soft", T0)
    record_report(session, ADDRESS, "soft", days(1))
    assert events(session) == 2 and not suppression.is_suppressed(session, ADDRESS)


def test_the_same_instant_in_another_zone_is_a_duplicate(session):
    record_report(session, ADDRESS, "hard", T0)
    other_zone = T0.astimezone(timezone(timedelta(hours=2)))
    assert not record_report(session, ADDRESS, "hard", other_zone).stored


def test_a_second_hard_bounce_is_stored_but_suppresses_nothing_new(session):
    record_report(session, ADDRESS, "hard", T0)
    outcome = record_report(session, ADDRESS, "hard", days(1))
    assert outcome == suppression.ReportOutcome(stored=True, suppressed=False)
    assert events(session) == 2


def test_a_duplicate_complaint_does_not_unsubscribe_again(session):
    reader = add_subscriber(session)
    record_report(session, ADDRESS, "complaint", T0)
    reader.state = "confirmed"  # came back through the signed page meanwhile
    assert record_report(session, ADDRESS, "complaint", T0) == suppression.ReportOutcome(stored=False)
    assert reader.state == "confirmed"


def test_reports_are_matched_to_any_spelling_of_the_address(session):
    reader = add_subscriber(session)
    record_report(session, "READER@Example.ORG", "complaint", T0)
    assert reader.state == "unsubscribed"


def test_unknown_kinds_and_invalid_addresses_are_refused(session):
    with pytest.raises(suppression.InvalidReport):
        record_report(session, ADDRESS, "bounce", T0)
    from newsletter.addresses import InvalidEmail
    with pytest.raises(InvalidEmail):
        record_report(session, "not an address", "hard", T0)
    assert events(session) == 0


def test_apply_reports_sums_up_and_checkpoints(session):
    reader = add_subscriber(session)
    items = [Report(ADDRESS, "complaint", T0), ReportError(2, "bad line"),
             Report("x@example.org", "hard", T0), Report("x@example.org", "hard", T0),
             Report("y@example.org", "soft", T0)]
    checkpoints = []
    summary = suppression.apply_reports(session, items, checkpoint=lambda: checkpoints.append(1),
                                        every=2)
    assert (summary.processed, summary.duplicates, summary.suppressed, summary.unsubscribed) == (
        4, 1, 2, 1)
    assert summary.invalid == [ReportError(2, "bad line")]
    assert len(checkpoints) == 2 and reader.state == "unsubscribed"


# ---------------------------------------------------------------- report formats

NOW = datetime(2025, 12, 1, tzinfo=timezone.utc)


def parse(text: str, format: str) -> list:
    return list(suppression.parse_reports(io.StringIO(text, newline=""), format, now=NOW))


def test_csv_reports_with_bad_lines_numbered():
    text = ("email,type,at,detail\n"
            "a@example.org,hard,2025-11-01T12:00:00Z,550 user unknown\n"
            "not-an-address,hard,,\n"
            "b@example.org,soft,2025-11-02 08:00,\n"
            "c@example.org,Complaint,,\"abuse, said \"\"the reader\"\"\"\n"
            "\n"
            "d@example.org,lost,,\n"
            "e@example.org,hard,yesterday,\n")
    items = parse(text, "csv")
    assert items[0] == Report("a@example.org", "hard", T0, "550 user unknown")
    assert items[1].where == 3 and "valid email" in items[1].message
    assert items[2] == Report("b@example.org", "soft", datetime(2025, 11, 2, 8, tzinfo=timezone.utc))
    assert items[3] == Report("c@example.org", "complaint", NOW, 'abuse, said "the reader"')
    assert items[4] == ReportError(7, "unknown type 'lost': use hard, soft or complaint")
    assert items[5].where == 8 and "ISO 8601" in items[5].message
    assert len(items) == 6


def test_csv_columns_may_come_in_any_order_and_case():
    items = parse("Type,Email\nsoft,a@example.org\n", "csv")
    assert items == [Report("a@example.org", "soft", NOW)]


def test_a_csv_file_without_the_header_is_refused():
    with pytest.raises(suppression.InvalidReportFile):
        parse("a@example.org,hard\n", "csv")
    with pytest.raises(suppression.InvalidReportFile):
        parse("", "csv")


def test_amazon_ses_style_bounce_types():
    text = ("email,type,bounce_type\n"
            "a@example.org,Bounce,Permanent\n"
            "b@example.org,bounce,Transient\n"
            "c@example.org,bounce,Undetermined\n"
            "d@example.org,bounce,\n")
    items = parse(text, "csv")
    assert [item.kind for item in items[:3]] == ["hard", "soft", "soft"]
    assert items[3].where == 5 and "bounce_type" in items[3].message


def test_json_lines_with_bad_lines_numbered():
    lines = [
        {"email": "a@example.org", "type": "hard", "at": "2025-11-01T13:00:00+01:00"},
        "",
        {"email": "b@example.org", "type": "bounce", "bounce_type": "Transient", "detail": "full"},
        "{not json",
        ["a", "list"],
        {"email": "c@example.org", "type": "complaint", "at": 1730000000},
        {"email": "d@example.org", "type": "complaint", "detail": None},
    ]
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    items = parse(text, "jsonl")
    assert items == [
        Report("a@example.org", "hard", T0),
        Report("b@example.org", "soft", NOW, "full"),
        ReportError(4, "not a JSON object"),
        ReportError(5, "not a JSON object"),
        ReportError(6, "at must be a string"),
        Report("d@example.org", "complaint", NOW),
    ]


def test_unicode_addresses_are_normalised_and_details_cleaned():
    text = '{"email": "Jörg@Bücher.example", "type": "hard", "detail": "line\\none\\u0000"}\n'
    [item] = parse(text, "jsonl")
    assert item.email == "Jörg@bücher.example" and item.detail == "line one"


def test_unknown_formats_are_refused():
    with pytest.raises(suppression.InvalidReportFile):
        parse("", "xml")


def test_report_lists_number_their_items_from_zero():
    items = list(suppression.parse_report_list(
        [{"email": "a@example.org", "type": "hard"}, "x", {"email": "", "type": "hard"}], now=NOW))
    assert items[0] == Report("a@example.org", "hard", NOW)
    assert items[1] == ReportError(1, "not a JSON object")
    assert items[2].where == 2
