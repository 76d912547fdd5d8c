"""Reader history and prompt counters, kept in Redis.

Per anonymous reader id, keys each bounded and expiring:
- `prompt:reads:<id>`: sorted set, story slug -> when last read (distinct stories);
- `prompt:shown:<id>:<prompt id>`: sorted set of the prompt's impressions (time -> time),
  the control's would-be ones too (it is held to the cap as if shown);
- `prompt:snooze:<id>`: hash, prompt id -> snoozed until (epoch seconds);
- `prompt:forgotten:<id>`: set for a minute when the reader's history is deleted (an opt-out);
- `prompt:assigned:<id>`: hash, prompt id -> the counter id of the reader's last assignment
  to it (the variant's, the control's, or the prompt's own): what a checkout that names no
  variant is attributed to (newsletter.memberships.checkout_attribution).
A page view reads only counts: stories in each read window, and per prompt its
impressions in its cap window and the last one. Times are passed in (`now`), so tests
choose the clock. Losing Redis loses only this.

Per variant (or prompt without an experiment), the counters of the report:
`prompt:stats:<id>` (a hash of counts) and `prompt:readers:<event>:<id>` (HyperLogLogs
of distinct reader ids: about 0.8 % error, 12 kB each at most).
"""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

import redis

from newsletter import prompt_rules_check as check
from newsletter.prompt_rules import Prompt, Rules
from newsletter.prompt_scripts import DECIDE_SCRIPT, READ_SCRIPT, RECORD_SCRIPT
from newsletter.redis_script import Packed, ThreadScript, packed
from newsletter.prompts import NOTHING, Decision, History, counts_readers_without_id

MAX_READS = check.MAX_READS              # stories remembered per reader
MAX_IMPRESSIONS = check.MAX_IMPRESSIONS  # impressions remembered per reader and prompt
# Prompts whose assignment is remembered per reader. Only ended campaigns add more; past
# it the hash starts afresh (a hash keeps no order to drop the oldest by), and the next
# page view writes the running prompt's assignment back.
MAX_ASSIGNED = 20
FORGOTTEN_SECONDS = 60  # outlives any read queued before an opt-out (deferred_reads sends within a second)
EVENTS = ("seen", "click", "dismiss")
COUNTS = ("assigned", "impressions") + EVENTS


class Claim(NamedTuple):
    """What the reader's next page views get whatever they read, as Redis answered with a decision."""

    until: float        # it holds only before this time (epoch seconds; inf: no end of its own)
    views: int | None   # for this many page views (None: any number; 0: it claims nothing)
    again: bool         # each of them gets this decision's prompt again (False: nothing)
    then: float = 0.0   # after the last of those, nothing may show before this (0: not known)


NO_CLAIM = Claim(0.0, 0, False)


class Outcome(NamedTuple):
    decision: Decision
    claim: Claim


def decide_and_record(r: redis.Redis, reader_id: str, slug: str, choices: list[Decision], now: datetime,
                      rules: Rules) -> Outcome:
    """Count the story read, pick the first of `choices` the reader's history allows, record it."""
    answer = _script(r, DECIDE_SCRIPT)(keys=(), args=(f"{now.timestamp():.6f}", slug, reader_id),
                                       tail=plan(rules, choices))
    index, reads, until, views, again, then = answer.split()
    index, views = int(index), int(views)
    claim = Claim(float(until), None if views < 0 else views, int(again) == 1, float(then)) if views else NO_CLAIM
    if index < 0:
        return Outcome(NOTHING, claim)
    chosen = choices[index]
    return Outcome(Decision(chosen.prompt, chosen.variant, chosen.control, int(reads)), claim)


def plan(rules: Rules, choices: list[Decision]) -> Packed:
    """DECIDE_SCRIPT's arguments after the first three, for these candidates."""
    return _plan(rules, tuple((choice.prompt, counter_id(choice), choice.show) for choice in choices))


@lru_cache(maxsize=256)
def _plan(rules: Rules, choices: tuple[tuple[Prompt, str, bool], ...]) -> Packed:
    """plan(), kept: a few differ per rules version (audiences, buckets)."""
    args = [rules.history_days * 86400, MAX_READS, MAX_IMPRESSIONS, MAX_ASSIGNED]
    for prompt, counter, show in choices:
        args += [prompt.id, counter, prompt.min_reads, prompt.read_window_days * 86400, prompt.cap_impressions,
                 prompt.cap_window_days * 86400, prompt.min_gap_hours * 3600, int(show)]
    return packed(args)


def _reads_key(reader_id: str) -> str:
    return f"prompt:reads:{reader_id}"


def _snooze_key(reader_id: str) -> str:
    return f"prompt:snooze:{reader_id}"


def _shown_key(reader_id: str, prompt_id: str) -> str:
    return f"prompt:shown:{reader_id}:{prompt_id}"


def _assigned_key(reader_id: str) -> str:
    return f"prompt:assigned:{reader_id}"


def record_read_and_load(r: redis.Redis, reader_id: str, slug: str | None, now: datetime, rules: Rules) -> History:
    """Count `slug` as read now (when given) and return the reader's history, in one round trip."""
    keys = [_reads_key(reader_id), _snooze_key(reader_id)] + [_shown_key(reader_id, p.id) for p in rules.prompts]
    reads, shown, snoozes = _script(r, READ_SCRIPT)(keys=keys, args=(now.timestamp(), slug or "", _numbers(rules)))
    return history_from(rules, reads, shown, snoozes, now.timestamp())


@lru_cache(maxsize=32)
def _numbers(rules: Rules) -> bytes:
    windows = rules.read_windows
    caps = [p.cap_window_days * 86400 for p in rules.prompts]
    numbers = [rules.history_days * 86400, MAX_READS, len(windows)] + [d * 86400 for d in windows] + caps
    return " ".join(str(n) for n in numbers).encode()


@lru_cache(maxsize=32)
def _script(r: redis.Redis, source: str) -> ThreadScript:
    """The script for `r`: EVALSHA on a connection per thread, in full again if Redis lost it."""
    return ThreadScript(r, source)


def load(r: redis.Redis, reader_id: str, now: datetime, rules: Rules) -> History:
    """The reader's history, recording nothing."""
    return record_read_and_load(r, reader_id, None, now, rules)


def stories_read(r: redis.Redis, reader_id: str, now: datetime, days: int) -> int:
    """Distinct stories the reader read in the last `days` days."""
    return r.zcount(_reads_key(reader_id), f"({now.timestamp() - days * 86400}", "+inf")


def history_from(rules: Rules, reads: list, shown: list, snoozes: list, moment: float) -> History:
    impressions = {p.id: (int(count), float(last)) for p, (count, last) in zip(rules.prompts, shown)
                   if float(last)}
    pairs = zip(snoozes[::2], snoozes[1::2])
    return History(reads=dict(zip(rules.read_windows, reads)),
                   impressions=impressions,
                   snoozed=frozenset(k.decode() for k, until in pairs if float(until) > moment))


def record_decision(r: redis.Redis, reader_id: str | None, decision: Decision, now: datetime,
                    keep_days: int) -> None:
    """Count what the slot decided: an impression for the reader, `assigned` for the variant, and
    for a reader with an id, which bucket of the prompt it was assigned."""
    if decision.prompt is None or (reader_id is None and not counts_readers_without_id(decision.prompt)):
        return
    counter = counter_id(decision)
    shown = f"{now.timestamp():.6f}" if reader_id else ""  # the control's too: held to the cap
    keys = [_shown_key(reader_id or "-", decision.prompt.id), f"prompt:stats:{counter}",
            f"prompt:readers:assigned:{counter}", _assigned_key(reader_id or "-")]
    args = [shown, MAX_IMPRESSIONS, keep_days * 86400, reader_id or "", "1" if decision.show else "",
            decision.prompt.id, counter, MAX_ASSIGNED]
    _script(r, RECORD_SCRIPT)(keys=keys, args=args)


def record_reader_event(r: redis.Redis, reader_id: str | None, event: str, prompt: Prompt, counter: str) -> bool:
    """Count a reader's event if the reader can have been shown `counter`: a reader with an id
    only in the bucket a decision assigned it (another is junk, or a page from before the rules
    changed), one without only where it counts (prompts.counts_readers_without_id). False: not counted."""
    if reader_id is None and not counts_readers_without_id(prompt):
        return False
    if reader_id is not None and r.hget(_assigned_key(reader_id), prompt.id) != counter.encode():
        return False
    record_event(r, reader_id, event, counter)
    return True


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
    pipe = r.pipeline(transaction=False)
    pipe.hset(_snooze_key(reader_id), prompt_id, now.timestamp() + days * 86400)
    pipe.expire(_snooze_key(reader_id), keep_days * 86400)
    pipe.execute()


def forget(r: redis.Redis, reader_id: str) -> None:
    """Delete everything kept about the reader (an opt-out), ended campaigns' impressions too."""
    shown = list(r.scan_iter(match=_shown_key(reader_id, "*"), count=1000))
    pipe = r.pipeline(transaction=True)
    pipe.delete(_reads_key(reader_id), _snooze_key(reader_id), _assigned_key(reader_id), *shown)
    # A read still queued in some process (newsletter.deferred_reads) must not count it again.
    pipe.set(f"prompt:forgotten:{reader_id}", 1, ex=FORGOTTEN_SECONDS)
    pipe.execute()


def assigned(r: redis.Redis, reader_id: str) -> dict[str, str]:
    """The reader's bucket of each prompt it was last assigned: prompt id -> counter id."""
    return {k.decode(): v.decode() for k, v in r.hgetall(_assigned_key(reader_id)).items()}


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
