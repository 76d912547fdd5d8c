"""Readers nothing may be shown for a while, known in process: their page views skip the round trip.

With each decision the script also answers until when, after it, no prompt may show the
reader whatever the reader reads (prompt_history.Outcome.quiet_until): the ends of the
snoozes, frequency caps and gaps holding each candidate back (after the appeal's fourth
impression in a month, say, with the sign-up shown yesterday). Until then, or LONGEST
seconds at most, the same reader on a story with the same candidates gets nothing at once,
and the story read is counted a moment later with others' (newsletter.deferred_reads). Most
of a site's page views are such readers' (after four appeals, a month of nothing).

Only other rules or other candidates could make a prompt show sooner (a story from another
section, the reader subscribing, a campaign starting), and they make another key: the
prompts in play (prompts.in_play). What the key leaves out only keeps prompts away longer
(a dismissal, an impression served by another process), and a reader who opts out is not
counted, so never looked up here. Per process: each gunicorn worker learns it once.
"""
from __future__ import annotations

import redis

from newsletter import prompt_history, prompts
from newsletter.deferred_reads import DeferredReads
from newsletter.prompt_rules import Rules
from newsletter.prompts import Decision, ReaderContext, Story

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


def decide(store: redis.Redis, quiet: QuietReaders, reads: DeferredReads, rules: Rules, reader: ReaderContext,
           story: Story, now) -> Decision:
    """A counted reader's decision: at once when no prompt may show (the read counted a moment
    later), else made, counted and recorded in Redis (prompt_history.decide_and_record)."""
    moment, in_play = now.timestamp(), prompts.in_play(rules, reader, story, now)
    key = (reader.id, in_play)  # the reader's buckets follow from its id: the same script arguments
    if not in_play or quiet.holds(key, moment):
        reads.add(reader.id, story.slug, moment, rules.history_days * 86400)
        return prompts.NOTHING
    choices = [prompts.assigned(prompt, reader, 0) for prompt in in_play]
    decision, until = prompt_history.decide_and_record(store, reader.id, story.slug, choices, now, rules)
    quiet.remember(key, until, moment)
    return decision
