"""The daily schedule: at DAILY_SEND_AT in TIMEZONE, the day's edition goes out once.

Beat runs the task `schedule.daily_send` every minute (workers/schedule_tasks.py); it
calls `daily_send`, which does nothing before the day's send time (local time, so it
follows the clocks when they change) nor after DAILY_SEND_WINDOW minutes past it.
Within that window, for the local day:

- an edition of that date has left draft (sending, paused, sent, or cancelled by an
  operator): the day is done, nothing happens;
- an operator prepared a draft of that date before the send time: that draft is sent;
- otherwise an edition of the day's stories is made and sent. A day without stories
  is skipped and the result says why; a story published later in the window is picked
  up by the next minute's run.

Two beats (or a beat and a task delivered twice) cannot both send: the decision runs
under a database lock of its own, held until the caller commits (a PostgreSQL advisory
lock; on SQLite the one write lock), so the second sees the first one's edition. The
task also holds a Redis lock (SET NX EX) around the whole run.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import false, select, text, update
from sqlalchemy.orm import Session

from newsletter import delivery, editions
from newsletter.models import Edition

# pg_advisory_xact_lock(LOCK_CLASS, day): the first key says "the daily schedule".
LOCK_CLASS = 0x4E4C4453
_SEND_AT = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class DailySettings:
    """DAILY_SEND_AT (None: the schedule is off), TIMEZONE, DAILY_SEND_WINDOW (minutes),
    EDITION_STORIES and PUBLICATION_NAME."""

    send_at: time | None
    tz: str = "UTC"
    window: timedelta = timedelta(minutes=60)
    stories: int = 8
    publication: str = editions.PUBLICATION

    @classmethod
    def from_config(cls, config) -> DailySettings:
        tz = config.get("TIMEZONE") or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"TIMEZONE {tz!r} is not a time zone name such as Europe/London") from None
        return cls(send_at=parse_send_at(config.get("DAILY_SEND_AT")), tz=tz,
                   window=timedelta(minutes=float(config.get("DAILY_SEND_WINDOW") or 60)),
                   stories=int(config.get("EDITION_STORIES") or 8),
                   publication=config.get("PUBLICATION_NAME") or editions.PUBLICATION)


@dataclass(frozen=True)
class DailyResult:
    """What a run did. outcome: off, not_due, too_late, done, started or skipped."""

    outcome: str
    day: date | None = None
    edition_id: int | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self) | {"day": self.day.isoformat() if self.day else None}


def parse_send_at(value) -> time | None:
    """"07:00" → 07:00; empty or None → None (the schedule is off); ValueError otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    match = _SEND_AT.fullmatch(str(value).strip())
    if not match:
        raise ValueError(f"DAILY_SEND_AT must be a 24-hour time such as 07:00, not {value!r}")
    return time(int(match[1]), int(match[2]))


def send_time(day: date, settings: DailySettings) -> datetime:
    """The instant (UTC) of `day`'s send. A time the clocks skip that day (01:30 when
    they go forward at 01:00) comes an hour later; one they repeat comes the first time."""
    local = datetime.combine(day, settings.send_at, tzinfo=ZoneInfo(settings.tz))
    return local.astimezone(timezone.utc)


def local_day(now: datetime, settings: DailySettings) -> date:
    return now.astimezone(ZoneInfo(settings.tz)).date()


def daily_send(session: Session, now: datetime, settings: DailySettings) -> DailyResult:
    """Send the local day's edition once, from its send time on (see the module's text).
    Flushes; the caller commits, which also releases the day's lock."""
    if settings.send_at is None:
        return DailyResult("off")
    day = local_day(now, settings)
    due = send_time(day, settings)
    if now < due:
        return DailyResult("not_due", day, reason=f"the send time is {due.isoformat()}")
    if now >= due + settings.window:
        return DailyResult("too_late", day, reason=f"the window closed at {(due + settings.window).isoformat()}")
    lock_day(session, day)
    return _send_day(session, day, due, now, settings)


def _send_day(session: Session, day: date, due: datetime, now: datetime,
              settings: DailySettings) -> DailyResult:
    done = _first(session, day, Edition.state != "draft")
    if done is not None:
        return DailyResult("done", day, done.id, f"edition {done.id} is {done.state}")
    edition = _first(session, day, Edition.state == "draft", Edition.created_at < due)
    if edition is None:
        try:
            edition = editions.create_edition(session, day=day, slugs=None, count=settings.stories,
                                              tz=settings.tz, publication=settings.publication)
        except editions.NoStories as e:
            return DailyResult("skipped", day, reason=str(e))
    delivery.start_send(session, edition.id, now)
    return DailyResult("started", day, edition.id)


def _first(session: Session, day: date, *conditions) -> Edition | None:
    query = (select(Edition).where(Edition.date == day, *conditions)
             .order_by(Edition.id.desc()).limit(1))
    return session.scalar(query)


def lock_day(session: Session, day: date) -> None:
    """Hold the lock on `day`'s decision until the session's transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(CAST(:kind AS integer), CAST(:day AS integer))"),
                        {"kind": LOCK_CLASS, "day": day.toordinal()})
        return
    # SQLite has one write lock for the whole database: any write statement takes it,
    # and this one, which changes nothing, makes a second run wait for our commit.
    session.execute(update(Edition).where(false()).values(version=Edition.version),
                    execution_options={"synchronize_session": False})


def describe(settings: DailySettings) -> str:
    """One line for people: when the schedule sends, or that it is off."""
    if settings.send_at is None:
        return "off (DAILY_SEND_AT is not set)"
    minutes = int(settings.window.total_seconds() // 60)
    return f"every day at {settings.send_at:%H:%M} {settings.tz} (or within {minutes} minutes after)"
