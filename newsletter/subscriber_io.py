"""Bulk import and export of the list as CSV, streamed in chunks so any size fits in memory.

Import is idempotent: an address is looked up by its hash, so a known address is
updated (its name) and never added twice, and a suppressed or erased address is skipped
and reported, never brought back. Export writes everything we hold about each
subscriber, consent records included, one row each.
"""
from __future__ import annotations

import csv
import json
import secrets
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain, islice
from typing import Iterable, Iterator, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter import addresses, consent, suppression
from newsletter.models import ConsentRecord, ConsentText, Subscriber, Suppression
from newsletter.queue import enqueue

CHUNK = 1000
COLUMNS = {  # our name: the header names taken for it (case-insensitive)
    "email": ("email", "email address", "e-mail", "e-mail address"),
    "name": ("name", "full name"),
    "state": ("state", "status"),
    "created_at": ("created_at",),
}
STATES = {"": None, "pending": "pending", "confirmed": "confirmed", "subscribed": None,
          "unsubscribed": "unsubscribed"}
NAME_LENGTH = 200
# The wording an import with --confirmed records: the operator vouches for the consent.
IMPORT_CONSENT_TEXT = ("Imported with --confirmed: the operator who imported this address "
                       "confirmed that its reader agreed to receive the Daily Edition.")
EXPORT_COLUMNS = ("id", "email", "name", "state", "source", "created_at", "confirmed_at",
                  "unsubscribed_at", "paused_until", "suppressed", "suppression_reason",
                  "consent")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (empty, or no email column)."""


class InvalidRow(ValueError):
    """One row cannot be imported; the message says why."""


@dataclass(frozen=True)
class ImportRow:
    line: int
    email: str
    email_hash: str
    name: str
    state: str | None
    created_at: datetime | None


@dataclass
class ImportReport:
    """Counts of an import; `invalid` and `skipped_lines` hold (line, message) pairs.

    `skipped` counts every row left alone: known and unchanged, a duplicate of an earlier
    row, suppressed or erased, or unsubscribed in the file; `skipped_lines` names those
    of them that are not plain "already known, unchanged" rows.
    """

    added: int = 0
    updated: int = 0
    skipped: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)
    skipped_lines: list[tuple[int, str]] = field(default_factory=list)

    def skip(self, line: int, why: str | None = None) -> None:
        self.skipped += 1
        if why:
            self.skipped_lines.append((line, why))


# ---------------------------------------------------------------- import

def import_csv(session: Session, stream: TextIO, confirmed: bool, now: datetime,
               source_name: str = "", checkpoint=None,
               send_confirmations: bool = False) -> ImportReport:
    """Import the subscribers of a CSV stream (column `email`, optional name, state,
    created_at); `checkpoint()` (say, the caller's commit) runs after each chunk.

    New pending subscribers get no mail unless `send_confirmations`: then each is sent
    the double opt-in mail a sign-up gets, once the chunk that added it commits.
    """
    report = ImportReport()
    plan = _Plan(confirmed, now, consent.ConsentContext(page=source_name, source="import"),
                 _import_wording(session) if confirmed else None, send_confirmations)
    for chunk in _chunks(_rows(stream, report), CHUNK):
        _import_chunk(session, chunk, plan, report)
        if checkpoint is not None:
            checkpoint()
    return report


@dataclass(frozen=True)
class _Plan:
    confirmed: bool
    now: datetime
    context: consent.ConsentContext
    wording: ConsentText | None
    send_confirmations: bool = False


def _import_wording(session: Session) -> ConsentText:
    # Held by the plan for the whole import, so each consent record finds the wording in
    # the session instead of asking the database again.
    return session.get(ConsentText, consent.wording_version(session, IMPORT_CONSENT_TEXT))


def _rows(stream: TextIO, report: ImportReport) -> Iterator[ImportRow]:
    reader = _reader(stream)
    columns = _columns(next(reader, None))
    # 64 bits of each address's hash: enough to spot duplicates, small for big files.
    seen: set[int] = set()
    for record in reader:
        if not any(value.strip() for value in record):
            continue
        try:
            row = _row(reader.line_num, record, columns)
        except (InvalidRow, addresses.InvalidEmail) as e:
            report.invalid.append((reader.line_num, str(e)))
            continue
        key = int(row.email_hash[:16], 16)
        if key in seen:
            report.skip(row.line, "duplicate of an earlier line")
            continue
        seen.add(key)
        yield row


def _reader(stream: TextIO):
    first = stream.readline()
    # Spreadsheets in many locales write ";" (or tabs) between columns; "," wins ties.
    return csv.reader(chain([first], stream), delimiter=max(",;\t", key=first.count))


def _columns(header: list[str] | None) -> dict[str, int]:
    if not header:
        raise ImportFileError("the file is empty: its first line must name the columns")
    names = [name.replace("\ufeff", "").strip().lower() for name in header]
    columns = {}
    for ours, taken in COLUMNS.items():
        found = [names.index(name) for name in taken if name in names]
        if found:
            columns[ours] = found[0]
    if "email" not in columns:
        raise ImportFileError("the first line must name the columns, one of them `email`")
    return columns


def _row(line: int, record: list[str], columns: dict[str, int]) -> ImportRow:
    def value(name: str) -> str:
        at = columns.get(name)
        return record[at].strip() if at is not None and at < len(record) else ""

    email = addresses.normalise(value("email"))
    return ImportRow(line=line, email=email, email_hash=addresses.email_hash(email),
                     name=_name(value("name")), state=_state(value("state")),
                     created_at=_created_at(value("created_at")))


def _name(raw: str) -> str:
    name = " ".join(raw.split())
    if len(name) > NAME_LENGTH:
        raise InvalidRow(f"the name is longer than {NAME_LENGTH} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidRow("the name holds control characters")
    return name


def _state(raw: str) -> str | None:
    if raw.lower() not in STATES:
        raise InvalidRow(f"unknown state {raw!r}: use pending, confirmed, subscribed or unsubscribed")
    return STATES[raw.lower()]


def _created_at(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidRow(f"created_at is not an ISO 8601 time: {raw!r}") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _chunks(rows: Iterable[ImportRow], size: int) -> Iterator[list[ImportRow]]:
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk


def _import_chunk(session: Session, chunk: list[ImportRow], plan: _Plan,
                  report: ImportReport) -> None:
    hashes = [row.email_hash for row in chunk]
    suppressed = suppression.suppressed_hashes(session, hashes)
    known = {s.email_hash: s for s in session.scalars(
        select(Subscriber).where(Subscriber.email_hash.in_(hashes)))}
    added = []
    for row in chunk:
        if row.email_hash in suppressed:
            report.skip(row.line, "the address is suppressed (bounced, complained or erased)")
        elif row.email_hash in known:
            _update(known[row.email_hash], row, report)
        elif row.state == "unsubscribed":
            report.skip(row.line, "unsubscribed in the file: not added")
        else:
            added.append(_add(session, row, plan))
    session.flush()
    for subscriber in added:
        if subscriber.state == "confirmed":
            consent.record_consent(session, subscriber, "import", plan.context, plan.wording.text)
        elif plan.send_confirmations:
            enqueue(session, "subscribers.signup_mail", subscriber.id)
    report.added += len(added)


def _update(subscriber: Subscriber, row: ImportRow, report: ImportReport) -> None:
    # A known address keeps its state: only the reader's own actions change that.
    if row.name and row.name != subscriber.name:
        subscriber.name = row.name
        report.updated += 1
    else:
        report.skip(row.line)


def _add(session: Session, row: ImportRow, plan: _Plan) -> Subscriber:
    state = "confirmed" if plan.confirmed and row.state != "pending" else "pending"
    now = plan.now
    subscriber = Subscriber(
        email=row.email, email_hash=row.email_hash, state=state, name=row.name,
        token_key=secrets.token_hex(16), source="import", created_at=row.created_at or now,
        confirmed_at=now if state == "confirmed" else None)
    session.add(subscriber)
    return subscriber


# ---------------------------------------------------------------- export

def export_csv(session: Session, stream: TextIO) -> int:
    """Write every subscriber as a CSV row (EXPORT_COLUMNS); returns how many."""
    writer = csv.writer(stream)
    writer.writerow(EXPORT_COLUMNS)
    written = 0
    everyone = session.scalars(
        select(Subscriber).order_by(Subscriber.id).execution_options(yield_per=CHUNK))
    for batch in everyone.partitions():
        records = _consent_records(session, [s.id for s in batch])
        reasons = _suppression_reasons(session, [s.email_hash for s in batch])
        writer.writerows(_export_row(s, records[s.id], reasons.get(s.email_hash)) for s in batch)
        written += len(batch)
    return written


def _consent_records(session: Session, ids: list[int]) -> dict[int, list[dict]]:
    found = defaultdict(list)
    query = (select(ConsentRecord).where(ConsentRecord.subscriber_id.in_(ids))
             .order_by(ConsentRecord.at, ConsentRecord.id))
    for record in session.scalars(query):
        found[record.subscriber_id].append({
            "action": record.action, "at": _iso(record.at), "version": record.version,
            "source": record.source, "page": record.page, "article": record.article,
            "ip": record.ip, "user_agent": record.user_agent})
    return found


def _suppression_reasons(session: Session, hashes: list[str]) -> dict[str, str]:
    query = select(Suppression.email_hash, Suppression.reason).where(
        Suppression.email_hash.in_(hashes))
    return dict(session.execute(query).all())


def _export_row(s: Subscriber, records: list[dict], reason: str | None) -> list:
    return [s.id, s.email, s.name, s.state, s.source, _iso(s.created_at), _iso(s.confirmed_at),
            _iso(s.unsubscribed_at), _iso(s.paused_until), str(reason is not None).lower(),
            reason or "", json.dumps(records, ensure_ascii=False, separators=(",", ":"))]


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else ""
