"""Readers nothing may be shown for a while: their page views skip Redis's round trip.

With each decision the script also answers until when, after it, no prompt may show the
reader whatever the reader reads (prompt_history.Outcome.quiet_until): the ends of the
snoozes, frequency caps and gaps holding each candidate back (after the appeal's fourth
impression in a month, say, with the sign-up shown yesterday). The web layer hands that
to the reader's browser as a signed claim (newsletter.web.prompt_reader: the reader id,
the `fingerprint` of the prompts in play, and the time), and until then a page view
that brings the claim back, on any process or host, gets nothing at once; its story read
is counted a moment later with others' (newsletter.deferred_reads).

The history stays in Redis: the claim only says what Redis answered, and cannot be forged.
Only other rules or other prompts in play could make a prompt show sooner (a story from
another section, the reader subscribing, a campaign starting), and they change the
fingerprint; what it leaves out only keeps prompts away longer (a dismissal, an impression
served elsewhere). A reader who drops the claim is asked about in Redis again, and a
reader who keeps an old one only goes without prompts that long.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import redis

from newsletter import prompt_history, prompts
from newsletter.deferred_reads import DeferredReads
from newsletter.prompt_rules import Prompt, Rules
from newsletter.prompts import Decision, ReaderContext, Story


@dataclass(frozen=True)
class Counted:
    """A counted reader's decision, and what a later page view may take for granted."""

    decision: Decision
    fingerprint: str     # the prompts in play and the numbers they are decided by ('' for none)
    quiet_until: float   # nothing may show before this after this view (epoch seconds); 0: unknown


def decide(store: redis.Redis, reads: DeferredReads, rules: Rules, reader: ReaderContext, story: Story, now,
           claimed: Callable[[str], float]) -> Counted:
    """A counted reader's decision: at once when no prompt is in play, or when the reader's
    claim (`claimed(fingerprint)`: the time it holds until, 0 for none) says none may show
    yet, the read counted a moment later; else made, counted and recorded in Redis."""
    moment, in_play = now.timestamp(), prompts.in_play(rules, reader, story, now)
    mark = fingerprint(in_play) if in_play else ""
    if not in_play or moment < claimed(mark):
        reads.add(reader.id, story.slug, moment, rules.history_days * 86400)
        return Counted(prompts.NOTHING, mark, 0.0)
    choices = [prompts.assigned(prompt, reader, 0) for prompt in in_play]
    decision, until = prompt_history.decide_and_record(store, reader.id, story.slug, choices, now, rules)
    return Counted(decision, mark, until)


@lru_cache(maxsize=256)
def fingerprint(in_play: tuple[Prompt, ...]) -> str:
    """What the decision of these prompts depends on besides the reader's history and id (ids,
    the numbers the script compares, what puts a reader in a bucket), in 16 hex digits: the
    same on every process for the same rules, another for other prompts or numbers."""
    facts = [(p.id, p.min_reads, p.read_window_days, p.cap_impressions, p.cap_window_days, p.min_gap_hours,
              p.experiment and (p.experiment.name, p.experiment.control_id, p.experiment.control_share,
                                tuple((v.id, v.weight) for v in p.experiment.variants)))
             for p in in_play]
    return hashlib.sha256(repr(facts).encode()).hexdigest()[:16]
