"""Reader history and prompt counters, kept in Redis.

Per anonymous reader id, three keys, each bounded and expiring:
- `prompt:reads:<id>`: sorted set, story slug -> when last read (distinct stories);
- `prompt:shown:<id>`: sorted set of impressions, "<prompt id> <time>" -> time;
- `prompt:snooze:<id>`: hash, prompt id -> snoozed until (epoch seconds).
Times are passed in (`now`), so tests choose the clock. Losing Redis loses only this.

Per variant (or prompt without an experiment), the counters of the report:
`prompt:stats:<id>` (a hash of counts) and `prompt:readers:<event>:<id>` (HyperLogLogs
of distinct reader ids: about 0.8 % error, 12 kB each at most).
"""
from __future__ import annotations

from datetime import datetime

import redis

from newsletter.prompts import Decision, History

MAX_READS = 200        # stories remembered per reader
MAX_IMPRESSIONS = 100  # impressions remembered per reader
EVENTS = ("seen", "click", "dismiss")
COUNTS = ("assigned", "impressions") + EVENTS


def _keys(reader_id: str) -> tuple[str, str, str]:
    return f"prompt:reads:{reader_id}", f"prompt:shown:{reader_id}", f"prompt:snooze:{reader_id}"


def record_read_and_load(r: redis.Redis, reader_id: str, slug: str | None, now: datetime,
                         keep_days: int) -> History:
    """Count `slug` as read now (when given) and return the reader's history, in one round trip."""
    reads, shown, snooze = _keys(reader_id)
    moment, ttl = now.timestamp(), keep_days * 86400
    pipe = r.pipeline(transaction=False)
    if slug:
        pipe.zadd(reads, {slug: moment})
        pipe.zremrangebyrank(reads, 0, -MAX_READS - 1)
        pipe.expire(reads, ttl)
    pipe.zrange(reads, 0, -1, withscores=True)
    pipe.zrange(shown, 0, -1, withscores=True)
    pipe.hgetall(snooze)
    *_, read_rows, shown_rows, snooze_rows = pipe.execute()
    return history_from(read_rows, shown_rows, snooze_rows, moment)


def load(r: redis.Redis, reader_id: str, now: datetime) -> History:
    """The reader's history, recording nothing."""
    return record_read_and_load(r, reader_id, None, now, 0)


def history_from(read_rows, shown_rows, snooze_rows, moment: float) -> History:
    impressions: dict[str, list[float]] = {}
    for member, score in shown_rows:
        impressions.setdefault(member.decode().split(" ")[0], []).append(score)
    snoozed = frozenset(k.decode() for k, until in snooze_rows.items() if float(until) > moment)
    return History(reads={m.decode(): s for m, s in read_rows},
                   impressions={k: tuple(v) for k, v in impressions.items()}, snoozed=snoozed)


def record_decision(r: redis.Redis, reader_id: str | None, decision: Decision, now: datetime,
                    keep_days: int) -> None:
    """Count what the slot decided: an impression for the reader, `assigned` for the variant."""
    if decision.prompt is None:
        return
    pipe = r.pipeline(transaction=False)
    counter = counter_id(decision)
    if decision.show:
        pipe.hincrby(f"prompt:stats:{counter}", "impressions", 1)
    if reader_id is not None:
        if decision.show:
            _, shown, _ = _keys(reader_id)
            pipe.zadd(shown, {f"{decision.prompt.id} {now.timestamp():.6f}": now.timestamp()})
            pipe.zremrangebyrank(shown, 0, -MAX_IMPRESSIONS - 1)
            pipe.expire(shown, keep_days * 86400)
        _count_reader(pipe, "assigned", counter, reader_id)
    pipe.execute()


def record_event(r: redis.Redis, reader_id: str | None, event: str, counter: str) -> None:
    """A seen, click or dismiss event for the variant (or prompt) `counter`."""
    pipe = r.pipeline(transaction=False)
    _count_reader(pipe, event, counter, reader_id)
    pipe.execute()


def _count_reader(pipe, event: str, counter: str, reader_id: str | None) -> None:
    pipe.hincrby(f"prompt:stats:{counter}", event, 1)
    if reader_id is not None:
        pipe.pfadd(f"prompt:readers:{event}:{counter}", reader_id)


def snooze(r: redis.Redis, reader_id: str, prompt_id: str, now: datetime, days: float,
           keep_days: int) -> None:
    """Keep `prompt_id` away from the reader for `days` days (a dismissal)."""
    if days <= 0:
        return
    _, _, key = _keys(reader_id)
    pipe = r.pipeline(transaction=False)
    pipe.hset(key, prompt_id, now.timestamp() + days * 86400)
    pipe.expire(key, keep_days * 86400)
    pipe.execute()


def forget(r: redis.Redis, reader_id: str) -> None:
    """Delete everything kept about the reader (an opt-out)."""
    r.delete(*_keys(reader_id))


def counter_id(decision: Decision) -> str:
    """Counters are kept per variant (control included), else per prompt."""
    return decision.variant_id


def counts(r: redis.Redis, counter: str) -> dict[str, int]:
    """The counts and distinct readers of one variant or prompt."""
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(f"prompt:stats:{counter}")
    for event in ("assigned",) + EVENTS:
        pipe.pfcount(f"prompt:readers:{event}:{counter}")
    stats, *readers = pipe.execute()
    result = {name: int(stats.get(name.encode(), 0)) for name in COUNTS}
    result |= {f"{event}_readers": n for event, n in zip(("assigned",) + EVENTS, readers)}
    return result
