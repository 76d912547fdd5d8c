"""The per-variant report: what each appeal variant (and its control) earned.

Intention to treat: a conversion of a bucket (a variant, or the control) is a membership
whose checkout was attributed to it (Membership.prompt_variant, from the checkout's
subscription metadata), whether the reader pressed that appeal's button (prompt_path
"click") or bought through another door, the join page or a members-only story's gate,
and was counted for the bucket the reader was assigned (prompt_path "assigned",
newsletter.memberships.checkout_attribution). So the control converts too. Counted once
per reader, whatever the membership's status now, unless Stripe never completed its
first payment (incomplete, incomplete_expired). The conversion rate is conversions over
the distinct readers the decision assigned to the bucket (readers shown the variant; for
the control, readers who would have been), with a Wilson score interval. `clicks_converted`
is the part of the conversions that came through the appeal's own button. Readers who are
not counted (no consent, opted out) are in no bucket: their conversions through an appeal's
button are listed apart (other_conversions), outside the rates.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import redis
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from newsletter import prompt_history
from newsletter.memberships import UNCOUNTED
from newsletter.models import Membership
from newsletter.prompt_rules import Prompt, Rules

NEVER_STARTED = ("incomplete", "incomplete_expired")
Z95 = 1.959964


@dataclass(frozen=True)
class VariantRow:
    prompt: str
    variant: str
    control: bool
    readers: int          # distinct readers assigned
    impressions: int
    seen: int             # events; a reader may send several
    clicks: int
    dismissals: int
    seen_readers: int     # distinct readers who sent them (what one reader cannot inflate)
    click_readers: int
    dismiss_readers: int
    conversions: int      # every path (intention to treat)
    clicks_converted: int  # of those, through the appeal's own button (prompt_path "click")
    rate: float
    low: float            # 95 % Wilson interval of the rate
    high: float


def report(session: Session, r: redis.Redis, rules: Rules) -> list[VariantRow]:
    """One row per variant and control of each prompt (one row for a prompt without an experiment)."""
    conversions, clicked = conversions_by_variant(session), conversions_by_variant(session, "click")
    return [variant_row(prompt, variant_id, control, prompt_history.counts(r, variant_id),
                        conversions.get(variant_id, 0), clicked.get(variant_id, 0))
            for prompt in rules.prompts for variant_id, control in variant_ids(prompt)]


def variant_ids(prompt: Prompt) -> list[tuple[str, bool]]:
    if prompt.experiment is None:
        return [(prompt.id, False)]
    experiment = prompt.experiment
    return [(experiment.control_id, True)] + [(v.id, False) for v in experiment.variants]


def conversions_by_variant(session: Session, path: str | None = None) -> dict[str, int]:
    """Distinct paying readers per prompt_variant: those attributed by `path` when given, else
    every counted reader's (not UNCOUNTED)."""
    query = (select(Membership.prompt_variant, func.count(func.distinct(Membership.reader_id)))
             .where(Membership.prompt_variant.is_not(None), Membership.status.not_in(NEVER_STARTED))
             .group_by(Membership.prompt_variant))
    if path is not None:
        query = query.where(Membership.prompt_path == path)
    else:
        query = query.where(or_(Membership.prompt_path.is_(None), Membership.prompt_path != UNCOUNTED))
    return {variant: n for variant, n in session.execute(query)}


def variant_row(prompt: Prompt, variant_id: str, control: bool, counted: dict[str, int],
                conversions: int, clicks_converted: int) -> VariantRow:
    readers = counted["assigned_readers"]
    low, high = wilson_interval(conversions, readers)
    return VariantRow(prompt=prompt.id, variant=variant_id, control=control, readers=readers,
                      impressions=counted["impressions"], seen=counted["seen"], clicks=counted["click"],
                      dismissals=counted["dismiss"], seen_readers=counted["seen_readers"],
                      click_readers=counted["click_readers"], dismiss_readers=counted["dismiss_readers"],
                      conversions=conversions, clicks_converted=clicks_converted,
                      rate=min(conversions, readers) / readers if readers else 0.0, low=low, high=high)


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of successes/trials; (0, 0) with no trials.

    Successes above trials (HyperLogLog counts readers approximately) count as trials.
    """
    if trials <= 0:
        return 0.0, 0.0
    successes = min(successes, trials)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - spread), min(1.0, centre + spread)


def other_conversions(session: Session, rules: Rules) -> dict[str, int]:
    """Conversions outside the rows: through checkouts no prompt of the rules names (a
    members-only story's gate, "gate"; ended campaigns), and through an appeal's button from
    readers who are not counted ("<variant> (readers not counted)")."""
    known = {variant_id for prompt in rules.prompts for variant_id, _ in variant_ids(prompt)}
    other = {v: n for v, n in conversions_by_variant(session).items() if v not in known}
    other |= {f"{v} (readers not counted)": n for v, n in conversions_by_variant(session, UNCOUNTED).items()}
    return dict(sorted(other.items()))


def as_json(rules: Rules, rows: list[VariantRow], other: dict[str, int]) -> dict:
    return {"rules_version": rules.version, "variants": [asdict(row) for row in rows],
            "other_conversions": other}
