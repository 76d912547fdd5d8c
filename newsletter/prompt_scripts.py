"""The Lua that keeps the prompt's reader histories inside Redis, in one place with the keys'
layout (newsletter.prompt_history's docstring): the page view's decision (DECIDE_SCRIPT),
the history read whole (READ_SCRIPT), a decision recorded (RECORD_SCRIPT), and reads sent
later in batches (READS_SCRIPT, newsletter.deferred_reads).
"""
from __future__ import annotations

import hashlib

# Every script keeps the reads and the impressions the same way: `member` at `score` in the
# sorted set `key`, its `most` newest kept (a member already there moves, and trims nothing),
# the whole kept `keep` seconds from now.
ADD_BOUNDED = """
local function add_bounded(key, score, member, most, keep)
  if redis.call('ZADD', key, score, member) == 1 then
    redis.call('ZREMRANGEBYRANK', key, 0, -tonumber(most) - 1)
  end
  redis.call('EXPIRE', key, keep)
end
"""

# One round trip per page view. KEYS: the reads, the snoozes, then each prompt's
# impressions. ARGV[1] now, ARGV[2] the story read ('' for none), ARGV[3] the rules'
# numbers packed in one argument (fewer to encode): seconds to keep, stories to keep,
# how many read windows, the read windows, then each prompt's cap window (seconds).
READ_SCRIPT = ADD_BOUNDED + """
local now = tonumber(ARGV[1])
local n = {}
for x in string.gmatch(ARGV[3], '%d+') do n[#n + 1] = tonumber(x) end
if ARGV[2] ~= '' then add_bounded(KEYS[1], now, ARGV[2], n[2], n[1]) end
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

# The scripts below remember the reader's bucket of a prompt the same way: the counter id
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

# A counted reader's decision of a prompt, as DECIDE_SCRIPT makes it and READS_SCRIPT records
# it later for a page view answered from a claim: the impression at `when` (a time in
# seconds, also its member), the counter's counts, the distinct readers, the bucket.
RECORD_SHOWN = REMEMBER_ASSIGNMENT + """
local function record_shown(reader, id, counter, when, show, max_shown, max_assigned, keep)
  add_bounded('prompt:shown:' .. reader .. ':' .. id, when, when, max_shown, keep)
  local stats = 'prompt:stats:' .. counter
  if show then redis.call('HINCRBY', stats, 'impressions', 1) end
  redis.call('HINCRBY', stats, 'assigned', 1)
  redis.call('PFADD', 'prompt:readers:assigned:' .. counter, reader)
  remember_assignment('prompt:assigned:' .. reader, id, counter, max_assigned, keep)
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
RECORD_SCRIPT = ADD_BOUNDED + REMEMBER_ASSIGNMENT + """
if ARGV[1] ~= '' then add_bounded(KEYS[1], ARGV[1], ARGV[1], ARGV[2], ARGV[3]) end
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
# A reader forgotten a moment ago (an opt-out racing a page view) is neither counted nor
# recorded again.
#
# It also answers what the reader's next page views get whatever they read (CLAIM below):
# newsletter.prompt_claims gives that to the reader's browser as a signed claim.
# Returns one string (one reply to parse, not six): the chosen candidate's index or -1, the
# stories read in its window, the claim's end (epoch seconds, 'inf': none), its views (-1:
# any number, 0: no claim), 1 if it is the chosen prompt again on each of them (0: nothing),
# and for such a claim, until when nothing may show after its last view (0: not known).
DECIDE_SCRIPT = ADD_BOUNDED + RECORD_SHOWN + FREE_AT + """
local now, slug, reader = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local keep, max_reads, max_shown, max_assigned = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
if redis.call('EXISTS', 'prompt:forgotten:' .. reader) == 1 then return '-1 0 0 0 0 0' end
local reads_key = 'prompt:reads:' .. reader
add_bounded(reads_key, now, slug, max_reads, keep)
local snoozed = redis.call('HGETALL', 'prompt:snooze:' .. reader)
local snoozed_until = {}
for i = 1, #snoozed, 2 do snoozed_until[snoozed[i]] = tonumber(snoozed[i + 1]) end
local reads_in = {}
local function reads_within(window)
  local reads = reads_in[window]
  if reads == nil then
    reads = redis.call('ZCOUNT', reads_key, '(' .. (now - window), '+inf')
    reads_in[window] = reads
  end
  return reads
end
-- The claim: on the next `views` page views before `till`, the same answer. A candidate
-- held back by time holds the claim to that time; one held back only by too few stories
-- read holds it to the views before enough are read (each view adds one story at most).
local till, views = math.huge, math.huge
local function free_of(i)  -- free_at of the candidate whose arguments start at ARGV[i]
  return free_at(now, 'prompt:shown:' .. reader .. ':' .. ARGV[i], snoozed_until[ARGV[i]] or 0,
                 tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]))
end
local function held(i)
  local free = free_of(i)
  if free > 0 then
    till = math.min(till, free)
  else
    views = math.min(views, tonumber(ARGV[i + 2]) - reads_within(ARGV[i + 3]) - 1)
  end
end
local function claim(index, reads, again, after)
  if views < 1 then return string.format('%d %d 0 0 0 0', index, reads) end
  return string.format('%d %d %.6f %d %d %.6f', index, reads, till, views == math.huge and -1 or views, again,
                       after or 0)
end
-- After the chosen candidate's claimed views fill its cap: until when nothing may show (0: not
-- known now), the candidates before it held back by time alone (`till` so far).
local function then_nothing(i, shown, cap_window)
  local oldest = redis.call('ZRANGEBYSCORE', shown, '(' .. (now - cap_window), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)[2]
  if oldest == nil then return 0 end
  local after = math.min(till, tonumber(oldest) + cap_window)
  for j = i + 8, #ARGV, 8 do
    local free = free_of(j)
    if free == 0 then return 0 end
    after = math.min(after, free)
  end
  return after
end
for i = 8, #ARGV, 8 do
  local id, counter, min_reads, window = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local cap, gap, show = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 6]), ARGV[i + 7] == '1'
  local reads = reads_within(window)
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
    record_shown(reader, id, counter, ARGV[1], show, max_shown, max_assigned, keep)
    local index, free = (i - 8) / 8, free_of(i)  -- not snoozed (ok): its cap and gap alone
    if free == 0 then
      -- It may show again at once: it is the answer while the ones before it stay held back,
      -- its cap has room and the reader has read enough (until the oldest read it needs ends).
      local room, after = math.huge, 0
      if cap > 0 then
        room = cap - redis.call('ZCOUNT', shown, '(' .. (now - ARGV[i + 5]), '+inf')
        -- Its cap, not the views of one before it, ends the claim: after its last view, nothing
        -- until the oldest impression now in the window leaves it (the cap is full till then),
        -- while every other candidate is held back by time.
        if room <= views and views == math.huge then after = then_nothing(i, shown, tonumber(ARGV[i + 5])) end
      end
      views = math.min(views, room)
      if min_reads > 0 then
        local needed = redis.call('ZREVRANGEBYSCORE', reads_key, '+inf', '(' .. (now - window), 'WITHSCORES',
                                  'LIMIT', min_reads - 1, 1)[2]
        till = math.min(till, tonumber(needed) + window)
      end
      return claim(index, reads, 1, after)
    end
    -- Held back now itself: nothing, while the ones after it are held back too.
    till = math.min(till, free)
    for j = i + 8, #ARGV, 8 do
      if views < 1 then break end
      held(j)
    end
    return claim(index, reads, 0)
  end
  held(i)
end
return claim(-1, 0, 0)
"""


DECIDE_SCRIPT_ID = hashlib.sha1(DECIDE_SCRIPT.encode()).hexdigest()[:12]  # names this way of deciding

# Page views answered from a claim (newsletter.deferred_reads), many in one call. ARGV[1..3]
# stories, impressions and assigned prompts to keep per reader, then seven per page view:
# reader id, story, when (epoch seconds), seconds to keep, and what it showed: prompt id and
# counter id ('' for nothing), '1' if shown ('0': the control). The read is counted as
# DECIDE_SCRIPT counts it, what was shown recorded as DECIDE_SCRIPT records it.
READS_SCRIPT = ADD_BOUNDED + RECORD_SHOWN + """
for i = 4, #ARGV, 7 do
  local reader, when, keep, id = ARGV[i], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if redis.call('EXISTS', 'prompt:forgotten:' .. reader) == 0 then
    add_bounded('prompt:reads:' .. reader, when, ARGV[i + 1], ARGV[1], keep)
    if id ~= '' then
      record_shown(reader, id, ARGV[i + 5], when, ARGV[i + 6] == '1', ARGV[2], ARGV[3], keep)
    end
  end
end
return 0
"""
