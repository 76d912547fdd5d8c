"""Reader history and prompt counters, kept in Redis.

Per anonymous reader id, three keys, each bounded and expiring:
- `prompt:reads:<id>`: sorted set, story slug -> when last read (distinct stories; the
  decision gets only the count in each read window);
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

from newsletter.prompt_rules import Rules
from newsletter.prompts import Decision, History

MAX_READS = 200        # stories remembered per reader
MAX_IMPRESSIONS = 100  # impressions remembered per reader
EVENTS = ("seen", "click", "dismiss")
COUNTS = ("assigned", "impressions") + EVENTS


# One round trip per page view: count the story read (KEYS[1], when ARGV[2] names one),
# then answer the distinct stories read in each window (ARGV[6…], seconds), the
# impressions since ARGV[5] seconds ago (members "<prompt id> <time>") and the snoozes.
READ_SCRIPT = """
local now = tonumber(ARGV[1])
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[4]) - 1)
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
local counts = {}
for i = 6, #ARGV do
  counts[#counts + 1] = redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[i])), '+inf')
end
local shown = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. (now - tonumber(ARGV[5])), '+inf')
return {counts, shown, redis.call('HGETALL', KEYS[3])}
"""


def _keys(reader_id: str) -> tuple[str, str, str]:
    return f"prompt:reads:{reader_id}", f"prompt:shown:{reader_id}", f"prompt:snooze:{reader_id}"


def record_read_and_load(r: redis.Redis, reader_id: str, slug: str | None, now: datetime, rules: Rules) -> History:
    """Count `slug` as read now (when given) and return the reader's history, in one round trip."""
    windows = rules.read_windows
    args = [now.timestamp(), slug or "", rules.history_days * 86400, MAX_READS, rules.impression_days * 86400]
    script = r.register_script(READ_SCRIPT)  # EVALSHA; the script is sent again if Redis lost it
    counts, shown, snoozes = script(keys=_keys(reader_id), args=args + [d * 86400 for d in windows])
    return history_from(dict(zip(windows, counts)), shown, snoozes, now.timestamp())


def stories_read(r: redis.Redis, reader_id: str, now: datetime, days: int) -> int:
    """Distinct stories the reader read in the last `days` days."""
    return r.zcount(_keys(reader_id)[0], f"({now.timestamp() - days * 86400}", "+inf")


def load(r: redis.Redis, reader_id: str, now: datetime, rules: Rules) -> History:
    """The reader's history, recording nothing."""
    return record_read_and_load(r, reader_id, None, now, rules)


def history_from(reads: dict[int, int], shown: list[bytes], snoozes: list[bytes], moment: float) -> History:
    impressions: dict[str, list[float]] = {}
    for member in shown:
        prompt_id, _, at = member.decode().rpartition(" ")
        impressions.setdefault(prompt_id, []).append(float(at))
    pairs = zip(snoozes[::2], snoozes[1::2])
    snoozed = frozenset(k.decode() for k, until in pairs if float(until) > moment)
    return History(reads={d: int(n) for d, n in reads.items()},
                   impressions={k: tuple(v) for k, v in impressions.items()}, snoozed=snoozed)


# What a decision leaves: KEYS[1] the reader's impressions (ARGV[1] the member, ARGV[2] its
# time; '' when nothing was shown), KEYS[2] the counters, KEYS[3] the distinct readers
# assigned (ARGV[5] the reader id; '' for a reader not counted).
RECORD_SCRIPT = """
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('HINCRBY', KEYS[2], 'impressions', 1)
end
redis.call('HINCRBY', KEYS[2], 'assigned', 1)
if ARGV[5] ~= '' then redis.call('PFADD', KEYS[3], ARGV[5]) end
return 0
"""


def record_decision(r: redis.Redis, reader_id: str | None, decision: Decision, now: datetime,
                    keep_days: int) -> None:
    """Count what the slot decided: an impression for the reader, `assigned` for the variant."""
    if decision.prompt is None:
        return
    counter, moment = counter_id(decision), now.timestamp()
    shown = f"{decision.prompt.id} {moment:.6f}" if decision.show and reader_id else ""
    keys = [f"prompt:shown:{reader_id}", f"prompt:stats:{counter}", f"prompt:readers:assigned:{counter}"]
    args = [shown, moment, MAX_IMPRESSIONS, keep_days * 86400, reader_id or ""]
    r.register_script(RECORD_SCRIPT)(keys=keys, args=args)
    if decision.show and not reader_id:  # an impression for a reader whose history is not kept
        r.hincrby(keys[1], "impressions", 1)


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
