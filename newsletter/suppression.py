"""The suppression list: addresses that never get mail again, and the reports that fill it.

An address is suppressed (by its hash, so erased addresses can be suppressed too) after
one hard bounce, three soft bounces within 30 days, or one complaint; a complaint also
unsubscribes the reader. Reports are BounceEvents counted by the time they happened
(`at`), so a provider's reports may arrive late, out of order and more than once.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Iterator, Mapping, TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter import addresses, consent, db, subscribers
from newsletter.models import BounceEvent, Subscriber, Suppression, utcnow

KINDS = ("hard", "soft", "complaint")
REASONS = ("hard_bounce", "soft_bounces", "complaint", "erased", "manual")
SOFT_BOUNCE_LIMIT = 3
SOFT_BOUNCE_WINDOW = timedelta(days=30)
FORMATS = ("csv", "jsonl")
# Amazon SES style: {"type": "bounce", "bounce_type": "Permanent"}.
BOUNCE_TYPES = {"permanent": "hard", "transient": "soft", "undetermined": "soft"}
DETAIL_LENGTH = 1000
# Why a complaint's unsubscribe happened, in its consent record.
COMPLAINT_CONTEXT = consent.ConsentContext(page="complaint report", source="mail")


class UnknownReason(ValueError):
    """A suppression reason outside REASONS."""


class InvalidReport(ValueError):
    """One report (a line, a list item) cannot be used; the message says why."""


class InvalidReportFile(ValueError):
    """The report file as a whole cannot be read (no header, unknown format)."""


@dataclass(frozen=True)
class Report:
    """A bounce or complaint about one address, as a provider reported it."""

    email: str
    kind: str
    at: datetime
    detail: str = ""


@dataclass(frozen=True)
class ReportError:
    """A report that could not be used: `where` is a file's line number or a list's index."""

    where: int
    message: str


@dataclass(frozen=True)
class ReportOutcome:
    """What one report did: stored (False for a duplicate), and whether it suppressed the
    address or unsubscribed its reader just now."""

    stored: bool
    suppressed: bool = False
    unsubscribed: bool = False


@dataclass
class ReportSummary:
    """What a batch of reports did; `processed` counts every valid report, duplicates too."""

    processed: int = 0
    duplicates: int = 0
    suppressed: int = 0
    unsubscribed: int = 0
    invalid: list[ReportError] = field(default_factory=list)

    def add(self, outcome: ReportOutcome) -> None:
        self.processed += 1
        self.duplicates += not outcome.stored
        self.suppressed += outcome.suppressed
        self.unsubscribed += outcome.unsubscribed


# ---------------------------------------------------------------- the list

def is_suppressed(session: Session, email: str) -> bool:
    """Whether `email` (any spelling of it) is on the suppression list; InvalidEmail if
    it is no address."""
    return is_hash_suppressed(session, addresses.email_hash(addresses.normalise(email)))


def is_hash_suppressed(session: Session, email_hash: str) -> bool:
    """Whether the address with this hash is on the suppression list."""
    return suppressed_hashes(session, [email_hash]) != set()


def suppressed_hashes(session: Session, email_hashes: Iterable[str]) -> set[str]:
    """Those of `email_hashes` that are suppressed (one query, for batches)."""
    query = select(Suppression.email_hash).where(Suppression.email_hash.in_(list(email_hashes)))
    return set(session.scalars(query))


def suppress(session: Session, email_hash: str, reason: str) -> Suppression:
    """Put an address on the suppression list; an address already there keeps its reason."""
    return _suppress(session, email_hash, reason)[0]


def _suppress(session: Session, email_hash: str, reason: str) -> tuple[Suppression, bool]:
    if reason not in REASONS:
        raise UnknownReason(f"unknown suppression reason {reason!r}")
    existing = _suppression(session, email_hash)
    if existing is not None:
        return existing, False
    # A concurrent report may insert the same hash: that is no error.
    db.insert_ignoring_duplicate(
        session, Suppression, {"email_hash": email_hash, "reason": reason}, "email_hash")
    return _suppression(session, email_hash), True


def _suppression(session: Session, email_hash: str) -> Suppression | None:
    return session.scalar(select(Suppression).where(Suppression.email_hash == email_hash))


def counts(session: Session) -> dict[str, int]:
    """Subscribers by state (every state, zeros too) plus `suppressed`: the list's size."""
    by_state = dict.fromkeys(Subscriber.STATES, 0) | subscribers.counts_by_state(session)
    suppressed = session.scalar(select(func.count()).select_from(Suppression))
    return by_state | {"suppressed": suppressed}


# ---------------------------------------------------------------- the rules

def record_report(session: Session, email: str, kind: str, at: datetime,
                  detail: str = "") -> ReportOutcome:
    """Store a bounce or complaint report about `email` and apply the suppression rules."""
    if kind not in KINDS:
        raise InvalidReport(f"unknown report kind {kind!r}")
    digest = addresses.email_hash(addresses.normalise(email))
    if _already_reported(session, digest, kind, at):
        return ReportOutcome(stored=False)
    session.add(BounceEvent(email_hash=digest, kind=kind, at=at, detail=detail[:DETAIL_LENGTH]))
    session.flush()
    reason = _suppression_reason(session, digest, kind, at)
    suppressed = reason is not None and _suppress(session, digest, reason)[1]
    unsubscribed = kind == "complaint" and _unsubscribe(session, digest)
    return ReportOutcome(stored=True, suppressed=suppressed, unsubscribed=unsubscribed)


def _already_reported(session: Session, digest: str, kind: str, at: datetime) -> bool:
    query = select(BounceEvent.id).where(
        BounceEvent.email_hash == digest, BounceEvent.kind == kind, BounceEvent.at == at)
    return session.scalar(query.limit(1)) is not None


def _suppression_reason(session: Session, digest: str, kind: str, at: datetime) -> str | None:
    if kind == "hard":
        return "hard_bounce"
    if kind == "complaint":
        return "complaint"
    return "soft_bounces" if _soft_bounces_close_together(session, digest, at) else None


def _soft_bounces_close_together(session: Session, digest: str, at: datetime) -> bool:
    # Only windows holding the new report can have changed: look 30 days either side.
    times = sorted(session.scalars(select(BounceEvent.at).where(
        BounceEvent.email_hash == digest, BounceEvent.kind == "soft",
        BounceEvent.at.between(at - SOFT_BOUNCE_WINDOW, at + SOFT_BOUNCE_WINDOW))))
    last = SOFT_BOUNCE_LIMIT - 1
    return any(times[i + last] - times[i] <= SOFT_BOUNCE_WINDOW
               for i in range(len(times) - last))


def _unsubscribe(session: Session, digest: str) -> bool:
    query = select(Subscriber).where(Subscriber.email_hash == digest,
                                     Subscriber.state != "unsubscribed")
    found = list(session.scalars(query))
    for subscriber in found:
        subscribers.unsubscribe(session, subscriber, COMPLAINT_CONTEXT)
    return bool(found)


def apply_reports(session: Session, items: Iterable[Report | ReportError],
                  checkpoint=None, every: int = 1000) -> ReportSummary:
    """Record every report of `items`, collect the errors; `checkpoint()` (say, the
    caller's commit) runs after each `every` reports."""
    summary = ReportSummary()
    for item in items:
        if isinstance(item, ReportError):
            summary.invalid.append(item)
            continue
        summary.add(record_report(session, item.email, item.kind, item.at, item.detail))
        if checkpoint is not None and summary.processed % every == 0:
            checkpoint()
    return summary


# ---------------------------------------------------------------- report formats

def parse_reports(stream: TextIO, format: str,
                  now: datetime | None = None) -> Iterator[Report | ReportError]:
    """Reports read from CSV (header `email,type[,at][,detail]`) or JSON Lines, one by
    one, with a ReportError (line number) for each line that cannot be used."""
    now = now or utcnow()
    if format == "csv":
        return _csv_reports(stream, now)
    if format == "jsonl":
        return _jsonl_reports(stream, now)
    raise InvalidReportFile(f"unknown report format {format!r}: use one of {', '.join(FORMATS)}")


def parse_report_list(items: list, now: datetime | None = None) -> Iterator[Report | ReportError]:
    """Reports from a JSON list of objects; a ReportError carries the item's index."""
    now = now or utcnow()
    for index, item in enumerate(items):
        yield _parsed(index, item, now)


def _csv_reports(stream: TextIO, now: datetime) -> Iterator[Report | ReportError]:
    reader = csv.DictReader(stream)
    names = [(name or "").strip().lower() for name in reader.fieldnames or []]
    if "email" not in names or "type" not in names:
        raise InvalidReportFile("the first line must name the columns: email,type[,at][,detail]")
    reader.fieldnames = names
    for row in reader:
        yield _parsed(reader.line_num, row, now)


def _jsonl_reports(stream: TextIO, now: datetime) -> Iterator[Report | ReportError]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            yield ReportError(number, "not a JSON object")
            continue
        yield _parsed(number, item, now)


def _parsed(where: int, item, now: datetime) -> Report | ReportError:
    try:
        return report_from_fields(item, now)
    except (InvalidReport, addresses.InvalidEmail) as e:
        return ReportError(where, str(e))


def report_from_fields(fields: Mapping, now: datetime) -> Report:
    """A Report from its fields (email, type, bounce_type, at, detail), or InvalidReport."""
    if not isinstance(fields, Mapping):
        raise InvalidReport("not a JSON object")
    email = addresses.normalise(_text(fields, "email"))
    kind = _kind(_text(fields, "type"), _text(fields, "bounce_type"))
    at = _time(_text(fields, "at"), now)
    detail = " ".join(db.without_nul(_text(fields, "detail")).split())
    return Report(email=email, kind=kind, at=at, detail=detail[:DETAIL_LENGTH])


def _text(fields: Mapping, name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidReport(f"{name} must be a string")
    return value.strip()


def _kind(type_: str, bounce_type: str) -> str:
    name = type_.lower()
    if name in KINDS:
        return name
    if name == "bounce":
        if bounce_type.lower() in BOUNCE_TYPES:
            return BOUNCE_TYPES[bounce_type.lower()]
        raise InvalidReport("type bounce needs bounce_type Permanent, Transient or Undetermined")
    if not name:
        raise InvalidReport("type is missing: use hard, soft or complaint")
    raise InvalidReport(f"unknown type {type_!r}: use hard, soft or complaint")


def _time(value: str, now: datetime) -> datetime:
    if not value:
        return now
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidReport(f"at is not an ISO 8601 time: {value!r}") from None
    # A time without a zone is taken as UTC, like the providers' own reports.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
