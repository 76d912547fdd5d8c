"""Sending an edition: start, plan, control, progress and the sweeper (docs/delivery.md).

The CLI, the API, the console and the daily schedule all call these functions. Each one
flushes and leaves the commit to its caller; work for the workers is queued through
newsletter.queue, so it is published only when that commit happens:

    start_send ─► "delivery.plan" ─► plan ─► "delivery.send_batch" × N ─► newsletter.sending
                                              ▲
    sweep (beat, every SEND_SWEEP_SECONDS) ───┘ queues again what nobody is working on

The edition's state says what the workers may do: sending (send), paused (stop, keep
the rest pending), cancelled (the rest skipped), sent (nothing left pending).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from newsletter import editions, ledger
from newsletter.models import Edition, utcnow
from newsletter.queue import enqueue

PLAN_TASK, BATCH_TASK = "delivery.plan", "delivery.send_batch"
# Sends that count as running (their rows may be worked on).
ACTIVE = ("sending", "paused")


@dataclass(frozen=True)
class SendSettings:
    """The SEND_* configuration (newsletter.config), in seconds unless named."""

    batch_size: int = 500
    plan_chunk: int = 20_000
    max_attempts: int = 8
    retry_base: float = 30.0
    retry_max: float = 300.0
    lease: float = 120.0
    queue_grace: float = 900.0
    plan_grace: float = 300.0

    @classmethod
    def from_config(cls, config) -> SendSettings:
        return cls(batch_size=int(config["SEND_BATCH_SIZE"]), plan_chunk=int(config["SEND_PLAN_CHUNK"]),
                   max_attempts=int(config["SEND_MAX_ATTEMPTS"]),
                   retry_base=float(config["SEND_RETRY_BASE"]), retry_max=float(config["SEND_RETRY_MAX"]),
                   lease=float(config["SEND_LEASE"]), queue_grace=float(config["SEND_QUEUE_GRACE"]),
                   plan_grace=float(config["SEND_PLAN_GRACE"]))

    def retry_delay(self, attempts: int) -> float:
        """Exponential backoff with jitter: base·2^(attempts-1), capped, then ×[0.5, 1]."""
        delay = min(self.retry_max, self.retry_base * 2 ** max(0, attempts - 1))
        return delay * random.uniform(0.5, 1.0)


# ---------------------------------------------------------------- starting and planning

def start_send(session: Session, edition_id: int, now: datetime | None = None) -> bool:
    """draft → sending, and queue the planning; False (no change) in any other state."""
    now = now or utcnow()
    if not _move(session, edition_id, ("draft",), "sending", send_requested_at=now):
        return False
    enqueue(session, PLAN_TASK, edition_id)
    return True


def plan(session: Session, edition_id: int, settings: SendSettings,
         checkpoint: Callable[[], None] = lambda: None, now: datetime | None = None) -> int:
    """Snapshot the receiving subscribers into the ledger, chunk by chunk, queuing the
    batches of each chunk; `checkpoint()` (the caller's commit) runs after every chunk so
    the workers start before the plan ends. Rows planned by this call; 0 when the send
    is already planned or not running."""
    now = now or utcnow()
    edition = session.get(Edition, edition_id, populate_existing=True)
    if edition is None or edition.state not in ACTIVE or edition.planned_at is not None:
        return 0
    token, until = ledger.new_token(ledger.QUEUED), now + timedelta(seconds=settings.queue_grace)
    planned, last = 0, ledger.last_subscriber_id(session)
    for after in range(0, last, settings.plan_chunk):
        if _state(session, edition_id) not in ACTIVE:
            break
        ids = ledger.plan_chunk(session, edition_id, after, after + settings.plan_chunk, token, until, now)
        _queue_batches(session, edition_id, ids, token, settings.batch_size)
        planned += len(ids)
        checkpoint()
    _finish_planning(session, edition_id, utcnow())
    return planned


def _finish_planning(session: Session, edition_id: int, now: datetime) -> None:
    session.execute(update(Edition).where(Edition.id == edition_id, Edition.planned_at.is_(None))
                    .values(planned_at=now), execution_options={"synchronize_session": False})
    if _state(session, edition_id) == "cancelled":
        ledger.skip_pending(session, edition_id, "cancelled")  # rows a racing cancel missed
    ledger.finish_if_done(session, edition_id, now)


def _queue_batches(session: Session, edition_id: int, ids, token: str, size: int,
                   countdown: float | None = None) -> None:
    for first, last in ledger.batch_ranges(ids, size):
        enqueue(session, BATCH_TASK, edition_id, first, last, token, countdown=countdown)


def queue_free_rows(session: Session, edition_id: int, settings: SendSettings,
                    now: datetime | None = None, *, take_queued: bool = False) -> int:
    """Reserve the pending rows nobody holds and queue batches for them; how many."""
    now = now or utcnow()
    token = ledger.new_token(ledger.QUEUED)
    ids = ledger.reserve_free(session, edition_id, token, now + timedelta(seconds=settings.queue_grace),
                              now, take_queued=take_queued)
    _queue_batches(session, edition_id, ids, token, settings.batch_size)
    return len(ids)


# ---------------------------------------------------------------- control

def pause(session: Session, edition_id: int) -> bool:
    """sending → paused: batches stop before their next message; False in any other state."""
    return _move(session, edition_id, ("sending",), "paused")


def resume(session: Session, edition_id: int, settings: SendSettings,
           now: datetime | None = None) -> bool:
    """paused → sending, queuing the pending rows again; False in any other state."""
    now = now or utcnow()
    if not _move(session, edition_id, ("paused",), "sending"):
        return False
    edition = session.get(Edition, edition_id, populate_existing=True)
    if edition.planned_at is None:
        edition.send_requested_at = now  # the sweeper's planning deadline starts again
        enqueue(session, PLAN_TASK, edition_id)
    else:
        # Batches queued before the pause found it paused and ended: take their rows back.
        queue_free_rows(session, edition_id, settings, now, take_queued=True)
        ledger.finish_if_done(session, edition_id, now)
    return True


def cancel(session: Session, edition_id: int, now: datetime | None = None) -> bool:
    """draft, sending or paused → cancelled; every pending row becomes skipped."""
    now = now or utcnow()
    if not _move(session, edition_id, ("draft", *ACTIVE), "cancelled", finished_at=now):
        return False
    ledger.skip_pending(session, edition_id, "cancelled")
    return True


def resend_failed(session: Session, edition_id: int, settings: SendSettings,
                  now: datetime | None = None) -> int:
    """Give every failed delivery of a running or finished send a fresh set of attempts;
    a finished send starts sending again. How many deliveries."""
    now = now or utcnow()
    state = _state(session, edition_id)
    if state not in (*ACTIVE, "sent"):
        return 0
    count = ledger.retry_failed(session, edition_id)
    if count and state == "sent":
        _move(session, edition_id, ("sent",), "sending", finished_at=None)
        state = "sending"
    if count and state == "sending":
        queue_free_rows(session, edition_id, settings, now)
    return count


CONTROLS = ("send", "pause", "resume", "cancel", "resend-failed")


@dataclass(frozen=True)
class Controlled:
    """What a send control did: the edition's state before, and the result (a change, or
    for resend-failed the number of deliveries queued again)."""

    action: str
    before: str
    result: bool | int


def control(session: Session, edition_id: int, action: str, settings: SendSettings,
            now: datetime | None = None) -> Controlled:
    """Run one send control, the same for the console's buttons, the CLI and the API.

    Raises editions.EditionNotFound; the caller commits.
    """
    before = editions.get(session, edition_id).state
    calls = {
        "send": lambda: start_send(session, edition_id, now),
        "pause": lambda: pause(session, edition_id),
        "resume": lambda: resume(session, edition_id, settings, now),
        "cancel": lambda: cancel(session, edition_id, now),
        "resend-failed": lambda: resend_failed(session, edition_id, settings, now),
    }
    return Controlled(action, before, calls[action]())


def _move(session: Session, edition_id: int, sources: tuple[str, ...], target: str, **values) -> bool:
    # One conditional UPDATE: of two concurrent callers, exactly one sees rowcount 1.
    statement = (update(Edition).where(Edition.id == edition_id, Edition.state.in_(sources))
                 .values(state=target, **values))
    moved = session.execute(statement, execution_options={"synchronize_session": False}).rowcount == 1
    if moved:
        edition = session.get(Edition, edition_id)
        session.refresh(edition)
    return moved


def _state(session: Session, edition_id: int) -> str | None:
    return session.scalar(select(Edition.state).where(Edition.id == edition_id))


# ---------------------------------------------------------------- progress

RATE_WINDOW = timedelta(seconds=60)


def progress(session: Session, edition_id: int, now: datetime | None = None) -> dict:
    """{"id", "state", "total", "sent", "failed", "pending", "skipped", "rate" (messages
    per second over the last minute), "eta_seconds" (None when unknown)}; EditionNotFound."""
    now = now or utcnow()
    state = _state(session, edition_id)
    if state is None:
        raise editions.EditionNotFound(edition_id)
    counts = ledger.counts(session, edition_id)
    rate = _rate(session, edition_id, now) if counts["pending"] and state == "sending" else 0.0
    eta = round(counts["pending"] / rate) if rate else (0 if not counts["pending"] else None)
    return {"id": edition_id, "state": state, "total": sum(counts.values()), **counts,
            "rate": round(rate, 1), "eta_seconds": eta}


def _rate(session: Session, edition_id: int, now: datetime) -> float:
    started = session.scalar(select(Edition.send_requested_at).where(Edition.id == edition_id)) or now
    window = min(RATE_WINDOW, max(now - started, timedelta(seconds=1)))
    return ledger.sent_since(session, edition_id, now - window) / window.total_seconds()


# ---------------------------------------------------------------- the sweeper

@dataclass
class SweepReport:
    planned: list[int]         # editions whose planning was queued again
    requeued: dict[int, int]   # edition id → rows queued again
    finished: list[int]        # editions that became sent


def sweep(session: Session, settings: SendSettings, now: datetime | None = None) -> SweepReport:
    """For each sending edition: queue the planning again when it is overdue, queue again
    the rows nobody holds (a dead worker's, a lost message's), and mark it sent when
    nothing is pending. Harmless when run twice at once: claims decide who sends."""
    now = now or utcnow()
    report = SweepReport([], {}, [])
    sending = select(Edition).where(Edition.state == "sending").execution_options(populate_existing=True)
    for edition in session.scalars(sending).all():
        if edition.planned_at is None:
            requested = edition.send_requested_at or now
            if requested < now - timedelta(seconds=settings.plan_grace):
                edition.send_requested_at = now
                enqueue(session, PLAN_TASK, edition.id)
                report.planned.append(edition.id)
            continue
        count = queue_free_rows(session, edition.id, settings, now)
        if count:
            report.requeued[edition.id] = count
        elif ledger.finish_if_done(session, edition.id, now):
            report.finished.append(edition.id)
    session.flush()
    return report
