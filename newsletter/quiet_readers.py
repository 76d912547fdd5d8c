"""Readers nothing may be shown for a while, known in process: their page views skip the round trip.

When the decision script finds that no prompt may show a counted reader, it also answers until
when that holds whatever the reader reads (prompt_history.Outcome.quiet_until): the ends of
the snoozes, frequency caps and gaps holding each candidate back. Until then, or LONGEST
seconds at most, the same reader on a story with the same candidates gets nothing at once,
and the story read is counted a moment later with others' (newsletter.deferred_reads). Most
of a site's page views are such readers' (after four appeals, a month of nothing).

Only other rules or other candidates could make a prompt show sooner (a story from another
section, the reader subscribing, a campaign starting), and they make another key: the
candidates as the script gets them. What the key leaves out only keeps prompts away longer
(a dismissal, an impression served by another process), and a reader who opts out is not
counted, so never looked up here. Per process: each gunicorn worker learns it once.
"""
from __future__ import annotations

import redis

from newsletter import prompt_history
from newsletter.deferred_reads import DeferredReads
from newsletter.prompt_rules import Rules
from newsletter.prompts import NOTHING, Decision

LONGEST = 300.0  # seconds a reader is kept quiet at most: bounds what a deleted history or a
                 # flushed Redis leaves out (a reader would see nothing for that long)


class QuietReaders:
    """`holds(key, moment)`: whether `remember` said nothing may show for `key` at `moment`."""

    def __init__(self, most: int = 50_000) -> None:
        self.most = most
        self.spans: dict[tuple, tuple[float, float]] = {}

    def holds(self, key: tuple, moment: float) -> bool:
        since, until = self.spans.get(key, (0.0, 0.0))
        return since <= moment < until

    def remember(self, key: tuple, until: float, moment: float) -> None:
        if until <= moment:
            self.spans.pop(key, None)
            return
        if len(self.spans) >= self.most:
            self.spans.clear()  # a burst of round trips, once; no order is kept to drop the oldest
        self.spans[key] = (moment, min(until, moment + LONGEST))


def decide(store: redis.Redis, quiet: QuietReaders, reads: DeferredReads, reader_id: str, slug: str,
           choices: list[Decision], now, rules: Rules) -> Decision:
    """A counted reader's decision: at once when no prompt may show (the read counted a moment
    later), else made, counted and recorded in Redis (prompt_history.decide_and_record)."""
    moment, keep = now.timestamp(), rules.history_days * 86400
    if not choices:
        reads.add(reader_id, slug, moment, keep)
        return NOTHING
    key = (reader_id, prompt_history.plan(rules, choices))
    if quiet.holds(key, moment):
        reads.add(reader_id, slug, moment, keep)
        return NOTHING
    decision, until = prompt_history.decide_and_record(store, reader_id, slug, choices, now, rules)
    quiet.remember(key, until, moment)
    return decision
