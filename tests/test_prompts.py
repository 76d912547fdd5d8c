"""The prompt decision, rule by rule, at a frozen moment (time is an argument, never the clock)."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest

from newsletter import prompts
from newsletter.prompt_rules import DEFAULT_PATH, InvalidRules, load_rules, parse_rules
from newsletter.prompts import History, ReaderContext, Story

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
DAY = 86400.0
READER = ReaderContext(id="a" * 32)
STORY = Story(slug="today", section="World", tags=("politics",))


def rules(*prompts_, **top):
    return parse_rules({"version": "test", **top, "prompts": list(prompts_)})


def appeal(**overrides):
    return {"id": "appeal", "kind": "membership", "priority": 50, "min_reads": 3, "read_window_days": 30,
            "frequency_cap": {"impressions": 4, "window_days": 30, "min_gap_hours": 0}, "snooze_days": 7,
            "exclude_sections": ["Obituaries"], "exclude_tags": ["sponsored"], **overrides}


NEWSLETTER = {"id": "daily", "kind": "newsletter", "priority": 10, "min_reads": 1}
CARD = {"id": "card", "kind": "update_card", "priority": 100}


def reads(stories: int, window_days: int = 30) -> dict[int, int]:
    """Distinct stories read in a window, as newsletter.prompt_history counts them."""
    return {window_days: stories}


def decide(active, reader=READER, story=STORY, history=History(), now=NOW):
    return prompts.prompt_decision(active, reader, story, history, now)


def test_the_appeal_waits_for_three_stories_in_its_window():
    active = rules(appeal())
    assert decide(active, history=History(reads=reads(2))).kind is None
    assert decide(active, history=History(reads=reads(5, window_days=7))).kind is None  # another window
    decision = decide(active, history=History(reads=reads(3)))
    assert decision.kind == "membership" and decision.show and decision.articles_read == 3


def test_the_frequency_cap_counts_impressions_in_its_window():
    active = rules(appeal())
    last = NOW.timestamp() - DAY
    assert decide(active, history=History(reads=reads(3), impressions={"appeal": (4, last)})).kind is None
    assert decide(active, history=History(reads=reads(3), impressions={"appeal": (3, last)})).kind == "membership"
    other = {"daily": (9, NOW.timestamp())}  # another prompt's impressions do not count
    assert decide(active, history=History(reads=reads(3), impressions=other)).kind == "membership"


def test_the_minimum_gap_between_two_impressions():
    active = rules(appeal(frequency_cap={"impressions": 10, "window_days": 30, "min_gap_hours": 24}))
    history = lambda hours_ago: History(reads=reads(3),  # noqa: E731
                                        impressions={"appeal": (1, NOW.timestamp() - hours_ago * 3600)})
    assert decide(active, history=history(23)).kind is None
    assert decide(active, history=history(24)).kind == "membership"
    # An impression older than the cap window still sets the gap's start.
    assert decide(active, history=History(reads=reads(3), impressions={"appeal": (0, NOW.timestamp())})).kind is None


def test_a_snoozed_prompt_stays_away_and_the_next_one_may_show():
    active = rules(appeal(), NEWSLETTER)
    history = History(reads=reads(3), snoozed=frozenset({"appeal"}))
    assert decide(active, history=history).kind == "newsletter"


@pytest.mark.parametrize("story", [Story(slug="s", section="obituaries"),
                                   Story(slug="s", section="World", tags=("Sponsored", "x"))])
def test_excluded_sections_and_tags_get_no_appeal(story):
    assert decide(rules(appeal()), story=story, history=History(reads=reads(3))).kind is None


def test_priority_picks_the_first_eligible_prompt():
    history = History(reads=reads(3))
    assert decide(rules(NEWSLETTER, appeal()), history=history).kind == "membership"
    assert decide(rules(NEWSLETTER, appeal(priority=5)), history=history).kind == "newsletter"


def test_start_and_end_dates():
    history = History(reads=reads(3))
    assert decide(rules(appeal(starts="2026-11-26")), history=history).kind is None
    assert decide(rules(appeal(ends="2026-11-25T12:00:00+00:00")), history=history).kind is None
    assert decide(rules(appeal(starts="2026-11-25", ends="2026-11-26")), history=history).kind == "membership"


def test_the_kill_switch_and_a_disabled_prompt():
    history = History(reads=reads(3))
    assert decide(rules(appeal(), NEWSLETTER, enabled=False), history=history).kind is None
    assert decide(rules(appeal(enabled=False), NEWSLETTER), history=history).kind == "newsletter"


def test_members_see_nothing_and_past_due_members_only_the_card_notice():
    active = rules(CARD, appeal(), NEWSLETTER)
    history = History(reads=reads(3))
    assert decide(active, ReaderContext(id=None, state="member"), history=history) == prompts.NOTHING
    assert decide(active, ReaderContext(id=None, state="past_due"), history=history).kind == "update_card"
    assert decide(active, history=history).kind == "membership"


def test_subscribers_never_get_the_sign_up():
    active = rules(NEWSLETTER)
    history = History(reads=reads(1))
    assert decide(active, history=history).kind == "newsletter"
    assert decide(active, ReaderContext(id="a" * 32, subscriber=True), history=history).kind is None


def test_bots_get_nothing():
    active = rules(CARD, {"id": "always", "kind": "membership"})
    assert decide(active, ReaderContext(id=None, bot=True, counted=False)) == prompts.NOTHING


def test_readers_not_counted_get_only_prompts_that_need_no_history():
    uncounted = ReaderContext(id=None, counted=False)
    assert decide(rules(appeal(min_reads=0)), uncounted).kind is None  # capped: needs history
    always = {"id": "always", "kind": "membership"}
    assert decide(rules(always), uncounted).kind == "membership"


def test_readers_not_counted_count_only_outside_experiments_and_history():
    plain, metered = rules({"id": "plain", "kind": "membership"}).prompts[0], rules(appeal()).prompts[0]
    in_experiment = rules({"id": "exp", "kind": "membership", "experiment": EXPERIMENT}).prompts[0]
    assert prompts.counts_readers_without_id(plain)
    assert not prompts.counts_readers_without_id(metered)        # never shown to them
    assert not prompts.counts_readers_without_id(in_experiment)  # shown, but its numbers are counted readers'


def test_a_members_only_story_has_its_gate_instead_of_the_slot_appeal():
    story = Story(slug="s", members_only=True)
    assert decide(rules(appeal(), NEWSLETTER), story=story, history=History(reads=reads(3))).kind == "newsletter"


# ---------------------------------------------------------------- variants

EXPERIMENT = {"name": "test-1", "control_share": 0.2,
              "variants": [{"id": "test-1:a", "weight": 1, "copy": {"title": "A"}},
                           {"id": "test-1:b", "weight": 3, "copy": {"title": "B"}}]}


def test_buckets_are_deterministic_and_follow_the_shares():
    active = rules(appeal(min_reads=0, frequency_cap={}, experiment=EXPERIMENT))
    experiment = active.prompts[0].experiment
    ids = [f"{n:032x}" for n in range(4000)]
    first = [prompts.bucket(experiment, i) for i in ids]
    assert first == [prompts.bucket(experiment, i) for i in ids]
    shares = Counter(v.id if v else "control" for v in first)
    assert 0.17 < shares["control"] / 4000 < 0.23
    assert 0.17 < shares["test-1:a"] / 4000 < 0.23
    assert 0.56 < shares["test-1:b"] / 4000 < 0.64


def test_the_control_share_sees_nothing_but_is_assigned():
    active = rules(appeal(min_reads=0, frequency_cap={}, experiment=EXPERIMENT))
    experiment = active.prompts[0].experiment
    control_reader = next(f"{n:032x}" for n in range(1000) if prompts.bucket(experiment, f"{n:032x}") is None)
    decision = decide(active, ReaderContext(id=control_reader))
    assert decision.control and not decision.show and decision.kind is None
    assert decision.variant_id == "test-1:control"


def test_a_new_experiment_name_reshuffles_readers():
    one = rules(appeal(experiment=EXPERIMENT)).prompts[0].experiment
    two = rules(appeal(experiment=EXPERIMENT | {"name": "test-2"})).prompts[0].experiment
    ids = [f"{n:032x}" for n in range(200)]
    assert [prompts.bucket(one, i) for i in ids] != [prompts.bucket(two, i) for i in ids]


def test_tokens_in_copy():
    assert prompts.fill_copy("{articles_read} stories; {price}; {other}",
                             {"articles_read": "5", "price": "$6 a month"}) == "5 stories; $6 a month; {other}"
    assert prompts.price_text(600, "usd") == "$6 a month"
    assert prompts.price_text(450, "EUR") == "€4.50 a month"
    assert prompts.price_text(600, "chf") == "6 CHF a month"


def test_events_must_name_the_readers_own_variant():
    active = rules(appeal(experiment=EXPERIMENT), NEWSLETTER)
    experiment = active.prompts[0].experiment
    mine = prompts.bucket(experiment, READER.id)
    mine_id = mine.id if mine else experiment.control_id
    other = next(v for v in ("test-1:a", "test-1:b", "test-1:control") if v != mine_id)
    assert prompts.event_prompt(active, READER.id, "membership", mine_id).id == "appeal"
    assert prompts.event_prompt(active, READER.id, "newsletter", "daily").id == "daily"
    for kind, variant in (("membership", other), ("newsletter", "test-1:a"), ("membership", "nope")):
        with pytest.raises(prompts.InvalidEvent):
            prompts.event_prompt(active, READER.id, kind, variant)


# ---------------------------------------------------------------- the rules file

def test_the_shipped_rules_load():
    shipped = load_rules(DEFAULT_PATH)
    assert shipped.version and shipped.enabled
    assert [p.kind for p in shipped.prompts] == ["update_card", "membership", "newsletter"]
    appeal_rule = shipped.prompts[1]
    assert (appeal_rule.min_reads, appeal_rule.read_window_days) == (3, 30)
    assert appeal_rule.experiment.control_share > 0


@pytest.mark.parametrize("document, message", [
    ({"prompts": []}, "version"),
    ({"version": 1, "prompts": [{"id": "x", "kind": "banner"}]}, "kind"),
    ({"version": 1, "prompts": [{"id": "x", "kind": "membership"}, {"id": "x", "kind": "newsletter"}]}, "twice"),
    ({"version": 1, "prompts": [{"id": "x", "kind": "membership", "starts": "soon"}]}, "starts"),
    ({"version": 1, "prompts": [{"id": "x", "kind": "membership",
                                 "experiment": {"control_share": 1, "variants": [{"id": "v"}]}}]}, "control_share"),
])
def test_bad_rules_are_refused_with_the_key_named(document, message):
    with pytest.raises(InvalidRules, match=message):
        parse_rules(document)


def test_an_edited_rules_file_is_read_again(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text('{"version": "1", "prompts": []}')
    assert load_rules(path).version == "1"
    path.write_text('{"version": "2", "enabled": false, "prompts": []}')
    assert load_rules(path).version == "2" and not load_rules(path).enabled


def test_history_is_kept_as_long_as_the_longest_window():
    active = rules(appeal(snooze_days=90), NEWSLETTER | {"read_window_days": 7})
    assert active.history_days == 91
    assert active.read_windows == (7, 30)
    with pytest.raises(InvalidRules, match="id"):
        rules({"id": "has space", "kind": "membership"})
