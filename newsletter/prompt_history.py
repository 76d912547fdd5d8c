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

import hashlib
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

import redis

from newsletter import prompt_rules_check as check
from newsletter.prompt_rules import Prompt, Rules
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

# One round trip per page view. KEYS: the reads, the snoozes, then each prompt's
# impressions. ARGV[1] now, ARGV[2] the story read ('' for none), ARGV[3] the rules'
# numbers packed in one argument (fewer to encode): seconds to keep, stories to keep,
# how many read windows, the read windows, then each prompt's cap window (seconds).
READ_SCRIPT = """
local now = tonumber(ARGV[1])
local n = {}
for x in string.gmatch(ARGV[3], '%d+') do n[#n + 1] = tonumber(x) end
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -n[2] - 1)
  redis.call('EXPIRE', KEYS[1], n[1])
end
local reads = {}
for i = 4, 3 + n[3] do
  reads[#reads + 1] = redis.call('ZCOUNT', KEYS[1], '(' .. (now - n[i]), '+inf')
end
local shown = {}
for k = 3, #KEYS do
  local last = redis.call('ZREVRANGE', KEYS[k], 0, 0, 'WITHSCORES')
  shown[#shown + 1] = {redis.call('ZCOUNT', KEYS[k], '(' .. (now - n[n[3] + k + 1]), '+inf'), last[2] or '0'}
end
return {reads, shown, redis.call('HGETALL', KEYS[2])}
"""

# Both scripts below remember the reader's bucket of a prompt the same way: the counter id
# under the prompt id, at most `most` prompts (past it the hash starts afresh: it keeps no
# order to drop the oldest by), kept `keep` seconds.
REMEMBER_ASSIGNMENT = """
local function remember_assignment(key, prompt_id, counter, most, keep)
  local added = redis.call('HSET', key, prompt_id, counter) == 1
  if added and redis.call('HLEN', key) > tonumber(most) then
    redis.call('DEL', key)
    redis.call('HSET', key, prompt_id, counter)
  end
  redis.call('EXPIRE', key, keep)
end
"""

# The control is held to its prompt's cap and gap as if it had been shown: each decision of
# it is kept among the reader's impressions of the prompt (not in the `impressions` count), so
# a control reader stops being assigned when the variants' readers stop being shown, and the
# lower-priority prompts reach both alike.
#
# What a decision leaves: KEYS[1] the prompt's impressions for the reader (ARGV[1] the
# time, '' when the reader is not counted), KEYS[2] the counters,
# KEYS[3] the distinct readers assigned (ARGV[4] the reader id, '' for none), KEYS[4] the
# reader's assignments (ARGV[6] the prompt id -> ARGV[7] the counter id, at most ARGV[8]
# prompts; ARGV[3] seconds to keep).
RECORD_SCRIPT = REMEMBER_ASSIGNMENT + """
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[2]) - 1)
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[2], 'impressions', 1) end
redis.call('HINCRBY', KEYS[2], 'assigned', 1)
if ARGV[4] ~= '' then
  redis.call('PFADD', KEYS[3], ARGV[4])
  remember_assignment(KEYS[4], ARGV[6], ARGV[7], ARGV[8], ARGV[3])
end
return 0
"""


# When a candidate that may not show now may show at the earliest, whatever the reader reads
# meanwhile: the latest end of its snooze, its cap (while the cap-th latest impression is
# inside the window) and its gap; 0 when none of them holds it back (too few stories read,
# which the next page view may change).
FREE_AT = """
local function free_at(now, shown, snoozed_until, cap, cap_window, gap)
  local free = 0
  if snoozed_until > now then free = snoozed_until end
  if cap > 0 then
    local nth = redis.call('ZREVRANGEBYSCORE', shown, '+inf', '(' .. (now - cap_window), 'WITHSCORES',
                           'LIMIT', cap - 1, 1)[2]
    if nth then free = math.max(free, tonumber(nth) + cap_window) end
  end
  if gap > 0 then
    local last = redis.call('ZREVRANGE', shown, 0, 0, 'WITHSCORES')[2]
    if last and now - tonumber(last) < gap then free = math.max(free, tonumber(last) + gap) end
  end
  return free
end
"""


# A counted reader's page view in one round trip: count the story read, take the first
# candidate (prompts.candidates, in order) that prompts.history_allows, and record it as
# record_decision does. It mirrors those Python functions exactly; tests/test_prompt_history.py
# checks the two against each other. ARGV: now, the story, the reader id, then the plan
# (packed once per rules version and candidates, so a request encodes only the first
# three): seconds to keep; stories, impressions and assigned prompts to keep; then eight
# per candidate: prompt id, counter id, min_reads, read_window, cap, cap_window, gap (in
# seconds), show (0: the control). Each redis.call costs about a microsecond of Redis's
# CPU over the command's own, and the request's thread waits for all of them, so the
# script makes as few as the answer needs: the read window's count and the snoozes are
# read once, a story read again does not trim. The keys are made here from those ids, as
# the Python functions name them, so the script needs a single Redis server, not a cluster.
# It also answers until when, after this decision, nothing may show whatever the reader reads
# (the earliest free_at of the candidates, as they stand after it): newsletter.quiet_readers
# gives that to the reader's browser as a signed claim. A reader forgotten a moment ago (an
# opt-out racing a page view) is neither counted nor recorded again.
DECIDE_SCRIPT = REMEMBER_ASSIGNMENT + FREE_AT + """
local now, slug, reader = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local keep, max_reads, max_shown, max_assigned = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
if redis.call('EXISTS', 'prompt:forgotten:' .. reader) == 1 then return {-1, 0, '0'} end
local reads_key = 'prompt:reads:' .. reader
if redis.call('ZADD', reads_key, now, slug) == 1 then
  redis.call('ZREMRANGEBYRANK', reads_key, 0, -max_reads - 1)
end
redis.call('EXPIRE', reads_key, keep)
local snoozed = redis.call('HGETALL', 'prompt:snooze:' .. reader)
local snoozed_until = {}
for i = 1, #snoozed, 2 do snoozed_until[snoozed[i]] = tonumber(snoozed[i + 1]) end
local reads_in = {}
local quiet = math.huge
for i = 8, #ARGV, 8 do
  local id, counter, min_reads, window = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local cap, gap, show = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 6]), ARGV[i + 7] == '1'
  local reads = reads_in[window]
  if reads == nil then
    reads = redis.call('ZCOUNT', reads_key, '(' .. (now - window), '+inf')
    reads_in[window] = reads
  end
  local shown = 'prompt:shown:' .. reader .. ':' .. id
  local ok = (snoozed_until[id] or 0) <= now and reads >= min_reads
  if ok and cap > 0 then
    ok = redis.call('ZCOUNT', shown, '(' .. (now - ARGV[i + 5]), '+inf') < cap
  end
  if ok and gap > 0 then
    local last = redis.call('ZREVRANGE', shown, 0, 0, 'WITHSCORES')[2]
    ok = last == nil or now - tonumber(last) >= gap
  end
  if ok then
    local stats = 'prompt:stats:' .. counter
    redis.call('ZADD', shown, now, ARGV[1])
    redis.call('ZREMRANGEBYRANK', shown, 0, -max_shown - 1)
    redis.call('EXPIRE', shown, keep)
    if show then redis.call('HINCRBY', stats, 'impressions', 1) end
    redis.call('HINCRBY', stats, 'assigned', 1)
    redis.call('PFADD', 'prompt:readers:assigned:' .. counter, reader)
    remember_assignment('prompt:assigned:' .. reader, id, counter, max_assigned, keep)
    -- Until when nothing may show after this: the ones before it as they were, it and the
    -- ones after it as they are now (most often 0 at once: this one may show again).
    local after = math.min(quiet, free_at(now, shown, 0, cap, tonumber(ARGV[i + 5]), gap))
    for j = i + 8, #ARGV, 8 do
      if after == 0 then break end
      after = math.min(after, free_at(now, 'prompt:shown:' .. reader .. ':' .. ARGV[j], snoozed_until[ARGV[j]] or 0,
                                      tonumber(ARGV[j + 4]), tonumber(ARGV[j + 5]), tonumber(ARGV[j + 6])))
    end
    return {(i - 8) / 8, reads, string.format('%.6f', after)}
  end
  quiet = math.min(quiet, free_at(now, shown, snoozed_until[id] or 0, cap, tonumber(ARGV[i + 5]), gap))
end
return {-1, 0, string.format('%.6f', quiet)}
"""


DECIDE_SCRIPT_ID = hashlib.sha1(DECIDE_SCRIPT.encode()).hexdigest()[:12]  # names this way of deciding


class Outcome(NamedTuple):
    decision: Decision
    # After this decision nothing may show before this time (epoch seconds), whatever the reader
    # reads meanwhile; 0 when something may show on the next page view.
    quiet_until: float


def decide_and_record(r: redis.Redis, reader_id: str, slug: str, choices: list[Decision], now: datetime,
                      rules: Rules) -> Outcome:
    """Count the story read, pick the first of `choices` the reader's history allows, record it."""
    if not choices:
        record_read_and_load(r, reader_id, slug, now, rules)
        return Outcome(NOTHING, 0.0)
    index, reads, quiet = _script(r, DECIDE_SCRIPT)(keys=(), args=(f"{now.timestamp():.6f}", slug, reader_id),
                                                     tail=plan(rules, choices))
    if index < 0:
        return Outcome(NOTHING, float(quiet))
    chosen = choices[index]
    return Outcome(Decision(chosen.prompt, chosen.variant, chosen.control, int(reads)), float(quiet))


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
