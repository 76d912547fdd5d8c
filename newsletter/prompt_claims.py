"""Page views answered from a claim: most of a counted reader's page views skip Redis's round trip.

With each decision the script also answers what the reader's next page views get whatever
they read (prompt_history.Claim): nothing, until the snoozes, caps and gaps holding each
prompt back end or, for a prompt held back only by too few stories read, for the views
before enough are (the appeal's fourth impression of the month with the sign-up shown
yesterday: nothing for a day; the sign-up on the first story: nothing on the second); or
the same prompt again, for as many views as its cap has room (the appeal's first
impression: the same appeal on the next three, then nothing while the cap is full and the
others are held back). The web layer hands that to the reader's browser as a signed claim
(newsletter.web.claim_cookie: the reader id, the `fingerprint` of the prompts in play, the
time, the views left, what they get). A page view that brings
it back, on any process or host, is answered at once, its story read and any impression
recorded a moment later with others' (newsletter.deferred_reads), and the claim handed
back with one view fewer.

The history stays in Redis: a claim only says what Redis answered, and cannot be forged.
Only other rules or other prompts in play could change the answer (a story from another
section, the reader subscribing, a campaign starting), and they change the fingerprint; a
dismissal drops the claim, and so does a page view on a story with other prompts in play
(or none), unless the claim is of nothing until a time. Two tabs that use the same claim at
once may show the prompt one time more than its cap (each is answered from the claim before
either reaches Redis).
A reader who drops the claim is asked about in Redis again; one who keeps an old one gets
that old answer again, as long as the claim lasts (31 days at most).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import lru_cache

import redis

from newsletter import prompt_history, prompts
from newsletter.deferred_reads import DeferredReads
from newsletter.prompt_rules import Prompt, Rules
from newsletter.prompts import Decision, ReaderContext, Story


@dataclass(frozen=True)
class Claim:
    """What the reader's next page views get on the prompts in play `fingerprint`, before `until`."""

    fingerprint: str
    until: float             # epoch seconds
    views: int | None        # page views left (None: any number)
    shown: int               # what each gets: the index of a prompt in play, -1 for nothing
    articles_read: int = 0   # stories read, for the shown prompt's copy
    then: float = 0.0        # after the last view, nothing before this time (0: not known)

    def holds(self, fingerprint: str, moment: float) -> bool:
        return fingerprint == self.fingerprint and moment < self.until and self.views != 0

    def used(self, moment: float) -> Claim | None:
        """The claim after one page view: a view fewer, a story more read; after its last, the
        claim of nothing that follows it, if any."""
        if self.views == 1:
            return Claim(self.fingerprint, self.then, None, -1) if self.then - moment >= 1 else None
        return replace(self, views=None if self.views is None else self.views - 1,
                       articles_read=self.articles_read + (self.shown >= 0))


@dataclass(frozen=True)
class Counted:
    """A counted reader's decision, and the claim the browser should hold after it."""

    decision: Decision
    fingerprint: str      # the prompts in play and the numbers they are decided by ('' for none)
    claim: Claim | None   # the claim to hold (None: none)
    changed: bool         # it differs from the one the page view brought (set it, or drop it)


def decide(store: redis.Redis, reads: DeferredReads, rules: Rules, reader: ReaderContext, story: Story, now,
           held: Claim | None) -> Counted:
    """A counted reader's decision: at once when no prompt is in play, or when the claim the
    reader `held` holds for the prompts in play, its read and impression recorded a moment
    later; else made, counted and recorded in Redis."""
    moment, in_play = now.timestamp(), prompts.in_play(rules, reader, story, now)
    mark = fingerprint(in_play) if in_play else ""
    keep = rules.history_days * 86400
    if not in_play:
        reads.add(reader.id, story.slug, moment, keep)
        return Counted(prompts.NOTHING, mark, *_outlasting(held))
    if held is not None and held.holds(mark, moment):
        return _answered(reads, held, in_play, reader, story, moment, keep)
    choices = [prompts.assigned(prompt, reader, 0) for prompt in in_play]
    decision, given = prompt_history.decide_and_record(store, reader.id, story.slug, choices, now, rules)
    shown = next((n for n, prompt in enumerate(in_play) if prompt is decision.prompt), -1)
    fresh = _claim(mark, given, shown, decision, moment)
    return Counted(decision, mark, fresh, True) if fresh else Counted(decision, mark, *_outlasting(held))


def _outlasting(held: Claim | None) -> tuple[Claim | None, bool]:
    """What is left of a claim a page view did not use (another story's prompts in play), and
    whether that changed it. One of nothing until a time still holds: no read and nothing
    shown can make a prompt of it show sooner. One counted in views, or of a prompt shown
    again, does not: this view read a story, and may have shown that prompt, outside it."""
    if held is None or (held.views is None and held.shown < 0):
        return held, False
    return None, True


def _answered(reads: DeferredReads, claim: Claim, in_play: tuple[Prompt, ...], reader: ReaderContext,
              story: Story, moment: float, keep: int) -> Counted:
    """A page view the claim answers; its read (and the impression) recorded a moment later."""
    if claim.shown < 0:
        reads.add(reader.id, story.slug, moment, keep)
        if claim.views is None:  # most page views: nothing, for as long as the claim lasts; it stays
            return Counted(prompts.NOTHING, claim.fingerprint, claim, False)
        return Counted(prompts.NOTHING, claim.fingerprint, claim.used(moment), True)
    chosen = prompts.assigned(in_play[claim.shown], reader, claim.articles_read + 1)
    reads.add(reader.id, story.slug, moment, keep, shown=chosen)
    return Counted(chosen, claim.fingerprint, claim.used(moment), True)


def _claim(mark: str, given: prompt_history.Claim, index: int, decision: Decision, moment: float) -> Claim | None:
    """The claim Redis's answer makes, if it holds for at least a view and a second."""
    if given.views == 0 or given.until - moment < 1:
        return None
    if given.again:
        return Claim(mark, given.until, given.views, index, decision.articles_read, given.then)
    return Claim(mark, given.until, given.views, -1)


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
