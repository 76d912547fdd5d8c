"""Readers nothing may be shown for a while: their page views skip Redis's round trip.

With each decision the script also answers until when, after it, no prompt may show the
reader whatever the reader reads (prompt_history.Outcome.quiet_until): the ends of the
snoozes, frequency caps and gaps holding each candidate back (after the appeal's fourth
impression in a month, say, with the sign-up shown yesterday). The web layer hands that
to the reader's browser as a signed claim (newsletter.web.prompt_reader: the reader id,
the `fingerprint` of what the script was asked, and the time), and until then a page view
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
from newsletter.prompt_rules import Rules
from newsletter.prompts import Decision, ReaderContext, Story
from newsletter.redis_script import Packed


@dataclass(frozen=True)
class Counted:
    """A counted reader's decision, and what a later page view may take for granted."""

    decision: Decision
    fingerprint: str     # what the script was (or would be) asked: the prompts in play, their numbers
    quiet_until: float   # nothing may show before this after this view (epoch seconds); 0: unknown


def decide(store: redis.Redis, reads: DeferredReads, rules: Rules, reader: ReaderContext, story: Story, now,
           claimed: Callable[[str], float]) -> Counted:
    """A counted reader's decision: at once when no prompt is in play, or when the reader's
    claim (`claimed(fingerprint)`: the time it holds until, 0 for none) says none may show
    yet, the read counted a moment later; else made, counted and recorded in Redis."""
    moment, choices = now.timestamp(), prompts.candidates(rules, reader, story, now)
    if not choices:
        reads.add(reader.id, story.slug, moment, rules.history_days * 86400)
        return Counted(prompts.NOTHING, "", 0.0)
    plan = prompt_history.plan(rules, choices)
    if moment < claimed(fingerprint(plan)):
        reads.add(reader.id, story.slug, moment, rules.history_days * 86400)
        return Counted(prompts.NOTHING, fingerprint(plan), 0.0)
    decision, until = prompt_history.decide_and_record(store, reader.id, story.slug, choices, now, rules)
    return Counted(decision, fingerprint(plan), until)


@lru_cache(maxsize=256)
def fingerprint(plan: Packed) -> str:
    """The script's arguments for these candidates (ids, buckets, every number it compares),
    in 16 hex digits: the same on every process for the same rules and reader's buckets."""
    return hashlib.sha256(plan.data).hexdigest()[:16]
