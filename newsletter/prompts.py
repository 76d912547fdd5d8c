"""The prompt decision: what the slot at the end of a story shows this reader, now.

Pure functions over explicit values (the rules, the reader, the story, the reader's
history, the time): no Redis, no request. newsletter.prompt_history keeps the history,
the web layer gathers the reader. docs/prompts.md tells the rules in words.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from newsletter.billing import money
from newsletter.prompt_rules import Experiment, Prompt, Rules, Variant

@dataclass(frozen=True)
class ReaderContext:
    """Who is reading: `id` is the anonymous reader id (None when not counted)."""

    id: str | None
    state: str = "none"          # newsletter.memberships.reader_state: member, past_due, none
    subscriber: bool = False     # a Daily Edition subscriber: never offered the sign-up
    bot: bool = False
    counted: bool = True         # history kept (consent given where needed, not opted out)


@dataclass(frozen=True)
class Story:
    slug: str
    section: str = ""
    tags: tuple[str, ...] = ()
    members_only: bool = False


@dataclass(frozen=True)
class History:
    """What the reader did before this page, as newsletter.prompt_history read it."""

    reads: dict[int, int] = field(default_factory=dict)   # window in days -> distinct stories read in it
    # prompt id -> (impressions in its cap window, the last one's time)
    impressions: dict[str, tuple[int, float]] = field(default_factory=dict)
    snoozed: frozenset[str] = frozenset()                              # prompt ids snoozed now


@dataclass(frozen=True)
class Decision:
    prompt: Prompt | None = None
    variant: Variant | None = None
    control: bool = False        # the reader is in the control share: shown nothing on purpose
    articles_read: int = 0

    @property
    def show(self) -> bool:
        return self.prompt is not None and not self.control

    @property
    def kind(self) -> str | None:
        return self.prompt.kind if self.show else None

    @property
    def variant_id(self) -> str | None:
        """The variant's id, the control's id, or the prompt's own id when it has no experiment."""
        if self.prompt is None:
            return None
        if self.prompt.experiment is None:
            return self.prompt.id
        return self.prompt.experiment.control_id if self.control else self.variant.id


NOTHING = Decision()


def prompt_decision(rules: Rules, reader: ReaderContext, story: Story, history: History,
                    now: datetime) -> Decision:
    """The first prompt, by priority, whose rules let it show this reader on this story.

    In two steps: `candidates` (what needs no history) then `history_allows`.
    newsletter.prompt_history runs the second step inside Redis for counted readers.
    """
    for decision in candidates(rules, reader, story, now):
        if history_allows(decision.prompt, history, now):
            return Decision(decision.prompt, decision.variant, decision.control,
                            history.reads.get(decision.prompt.read_window_days, 0))
    return NOTHING


def candidates(rules: Rules, reader: ReaderContext, story: Story, now: datetime) -> list[Decision]:
    """The prompts that may show, by priority, each in the reader's bucket, before their history
    is looked at (`in_play`)."""
    return [assigned(prompt, reader, 0) for prompt in in_play(rules, reader, story, now)]


def in_play(rules: Rules, reader: ReaderContext, story: Story, now: datetime) -> tuple[Prompt, ...]:
    """The prompts that may show, by priority, before the reader's bucket and history are looked
    at: audience, dates, story, and for readers not counted only history-free ones."""
    if not rules.enabled or reader.bot or reader.state == "member":
        return ()
    return tuple(prompt for prompt in eligible(rules, reader.state, reader.subscriber, reader.counted, story)
                 if running(prompt, now))


@lru_cache(maxsize=4096)
def eligible(rules: Rules, state: str, subscriber: bool, counted: bool, story: Story) -> tuple[Prompt, ...]:
    """The prompts whose audience and story rules admit the reader, worked out once per kind of
    reader and story (a page view asks for them, and the answer rarely changes)."""
    reader = ReaderContext(id=None, state=state, subscriber=subscriber, bot=False, counted=counted)
    return tuple(prompt for prompt in rules.prompts
                 if prompt.enabled and for_audience(prompt, reader, story) and story_allows(prompt, story)
                 and (counted or not prompt.needs_history))


def history_allows(prompt: Prompt, history: History, now: datetime) -> bool:
    """Not snoozed, enough stories read in its window, under its frequency cap."""
    return (prompt.id not in history.snoozed
            and history.reads.get(prompt.read_window_days, 0) >= prompt.min_reads
            and under_cap(prompt, history.impressions.get(prompt.id, (0, 0.0)), now))


def for_audience(prompt: Prompt, reader: ReaderContext, story: Story) -> bool:
    """past_due readers get the card notice only; others get the appeal and, unsubscribed, the sign-up."""
    if prompt.kind == "update_card":
        return reader.state == "past_due"
    if reader.state != "none":
        return False
    if prompt.kind == "membership":
        return not story.members_only  # a members-only story's gate is its appeal already
    return not reader.subscriber


def running(prompt: Prompt, now: datetime) -> bool:
    return (prompt.starts is None or prompt.starts <= now) and (prompt.ends is None or now < prompt.ends)


def story_allows(prompt: Prompt, story: Story) -> bool:
    if story.section.casefold() in prompt.exclude_sections:
        return False
    return not any(tag.casefold() in prompt.exclude_tags for tag in story.tags)


def under_cap(prompt: Prompt, shown: tuple[int, float], now: datetime) -> bool:
    """Fewer than the cap's impressions in its window, and the minimum gap since the last."""
    count, last = shown
    if prompt.cap_impressions and count >= prompt.cap_impressions:
        return False
    return not (prompt.min_gap_hours and last) or now.timestamp() - last >= prompt.min_gap_hours * 3600


def assigned(prompt: Prompt, reader: ReaderContext, articles_read: int) -> Decision:
    """The decision to show `prompt`, in the reader's bucket of its experiment."""
    if prompt.experiment is None:
        return Decision(prompt=prompt, articles_read=articles_read)
    variant = bucket(prompt.experiment, reader.id)
    return Decision(prompt=prompt, variant=variant, control=variant is None, articles_read=articles_read)


def bucket(experiment: Experiment, reader_id: str | None) -> Variant | None:
    """The reader's variant (None: control), the same on every request.

    The reader id hashed with the experiment's name gives a point in [0, 1): the first
    `control_share` of the line is the control, the rest is split by the variants' weights.
    A reader without an id gets the first variant and is in no control.
    """
    if reader_id is None:
        return experiment.variants[0]
    point = unit_hash(f"{experiment.name}:{reader_id}")
    if point < experiment.control_share:
        return None
    point = (point - experiment.control_share) / (1 - experiment.control_share)
    total = sum(v.weight for v in experiment.variants)
    edge = 0.0
    for variant in experiment.variants:
        edge += variant.weight / total
        if point < edge:
            return variant
    return experiment.variants[-1]


def unit_hash(text: str) -> float:
    """A uniform point in [0, 1) from `text`'s SHA-256."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def fill_copy(text: str, tokens: dict[str, str]) -> str:
    """`text` with {articles_read} and {price} filled in; other braces stay as written."""
    for name, value in tokens.items():
        text = text.replace("{" + name + "}", value)
    return text


def counts_readers_without_id(prompt: Prompt) -> bool:
    """Whether a reader who is not counted (no id) counts in `prompt`'s numbers: not in an
    experiment's, which are its counted readers' (each in a bucket by id; such a reader sees
    the first variant), nor for a prompt needing history, which such a reader is never shown."""
    return prompt.experiment is None and not prompt.needs_history


class InvalidEvent(ValueError):
    """An event that names no prompt of the rules, or a variant that is not the reader's."""


def event_prompt(rules: Rules, reader_id: str | None, kind: str, variant_id: str) -> Prompt:
    """The prompt a reader's seen, click or dismiss event is about."""
    prompt = rules.owner(variant_id)
    if prompt is None or prompt.kind != kind:
        raise InvalidEvent(f"no {kind} prompt has the variant {variant_id!r}")
    if prompt.experiment is not None and reader_id is not None:
        mine = bucket(prompt.experiment, reader_id)
        if variant_id != (mine.id if mine else prompt.experiment.control_id):
            raise InvalidEvent(f"{variant_id!r} is not this reader's variant")
    return prompt


def price_text(amount: int, currency: str) -> str:
    """`{price}` in prompt copy: 600 "usd" is "$6 a month"."""
    return f"{money(amount, currency)} a month"
