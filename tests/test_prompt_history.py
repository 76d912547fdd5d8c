"""Reader history and prompt counters in a real Redis, at chosen moments."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from newsletter import prompt_history, prompts
from newsletter.deferred_reads import DeferredReads
from newsletter.prompt_rules import parse_rules

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
READER = "b" * 32
RULES = parse_rules({"version": "t", "prompts": [
    {"id": "daily", "kind": "newsletter", "read_window_days": 7},
    {"id": "appeal", "kind": "membership", "min_reads": 3, "snooze_days": 7, "priority": 1,
     "experiment": {"name": "exp", "variants": [{"id": "exp:a"}]}}]})
APPEAL = RULES.prompts[0]
assert APPEAL.id == "appeal"


def test_reads_are_distinct_stories_counted_in_each_window(broker):
    for slug, days in (("one", 40), ("two", 20), ("three", 5), ("two", 2)):
        prompt_history.record_read_and_load(broker, READER, slug, NOW - timedelta(days=days), RULES)
    history = prompt_history.load(broker, READER, NOW, RULES)
    assert history.reads == {7: 2, 30: 2}  # "two" twice is one story; "one" fell out of both
    assert prompt_history.stories_read(broker, READER, NOW, 30) == 2
    assert prompt_history.load(broker, READER, NOW + timedelta(days=4), RULES).reads == {7: 1, 30: 2}


def test_history_is_bounded_and_expires(broker):
    for n in range(prompt_history.MAX_READS + 25):
        prompt_history.record_read_and_load(broker, READER, f"story-{n}", NOW + timedelta(seconds=n), RULES)
    assert broker.zcard(f"prompt:reads:{READER}") == prompt_history.MAX_READS
    assert broker.zscore(f"prompt:reads:{READER}", "story-0") is None
    assert prompt_history.load(broker, READER, NOW + timedelta(hours=1), RULES).reads[30] == prompt_history.MAX_READS
    assert 30 * 86400 < broker.ttl(f"prompt:reads:{READER}") <= 31 * 86400


def test_the_decision_script_keeps_reads_bounded_and_a_story_read_again_as_one(broker):
    choices = [prompts.Decision(prompt=RULES.prompts[1])]  # "daily": no experiment
    for n in range(prompt_history.MAX_READS + 5):
        prompt_history.decide_and_record(broker, READER, f"story-{n}", choices, NOW + timedelta(seconds=n), RULES)
    again = NOW + timedelta(hours=1)
    prompt_history.decide_and_record(broker, READER, "story-100", choices, again, RULES)  # read before: not trimmed

    key = f"prompt:reads:{READER}"
    assert broker.zcard(key) == prompt_history.MAX_READS
    assert broker.zscore(key, "story-4") is None and broker.zscore(key, "story-5") is not None
    assert broker.zscore(key, "story-100") == again.timestamp()
    assert 30 * 86400 < broker.ttl(key) <= 31 * 86400


def test_impressions_per_prompt_in_the_cap_window_and_the_assigned_counters(broker):
    decision = prompts.Decision(prompt=APPEAL, variant=APPEAL.experiment.variants[0], articles_read=3)
    for at in (NOW - timedelta(days=40), NOW, NOW + timedelta(hours=1)):
        prompt_history.record_decision(broker, READER, decision, at, 41)
    history = prompt_history.load(broker, READER, NOW + timedelta(hours=2), RULES)
    assert history.impressions == {"appeal": (2, (NOW + timedelta(hours=1)).timestamp())}
    counted = prompt_history.counts(broker, "exp:a")
    assert counted["impressions"] == 3 and counted["assigned"] == 3 and counted["assigned_readers"] == 1
    assert broker.ttl(f"prompt:shown:{READER}:appeal") > 40 * 86400


def test_impressions_are_bounded(broker):
    decision = prompts.Decision(prompt=APPEAL, variant=APPEAL.experiment.variants[0], articles_read=3)
    for n in range(prompt_history.MAX_IMPRESSIONS + 5):
        prompt_history.record_decision(broker, READER, decision, NOW + timedelta(seconds=n), 31)
    assert broker.zcard(f"prompt:shown:{READER}:appeal") == prompt_history.MAX_IMPRESSIONS


def test_the_control_is_assigned_and_held_to_the_cap_but_counts_no_impression(broker):
    decision = prompts.Decision(prompt=APPEAL, control=True)
    prompt_history.record_decision(broker, READER, decision, NOW, 31)
    # In the reader's history as if shown (the cap holds it back alike), not in the counts.
    assert prompt_history.load(broker, READER, NOW, RULES).impressions == {"appeal": (1, NOW.timestamp())}
    counted = prompt_history.counts(broker, "exp:control")
    assert counted["assigned_readers"] == 1 and counted["impressions"] == 0


def test_a_snooze_ends_when_its_days_are_over(broker):
    prompt_history.snooze(broker, READER, "appeal", NOW, 7, 31)
    assert prompt_history.load(broker, READER, NOW + timedelta(days=6, hours=23), RULES).snoozed == {"appeal"}
    assert prompt_history.load(broker, READER, NOW + timedelta(days=7, seconds=1), RULES).snoozed == frozenset()
    assert broker.ttl(f"prompt:snooze:{READER}") > 7 * 86400


def test_events_count_per_variant_and_distinct_readers(broker):
    for reader in (READER, READER, "c" * 32, None):
        prompt_history.record_event(broker, reader, "seen", "exp:a")
    prompt_history.record_event(broker, READER, "click", "exp:a")
    counted = prompt_history.counts(broker, "exp:a")
    assert (counted["seen"], counted["seen_readers"], counted["click"], counted["dismiss"]) == (4, 2, 1, 0)


def test_a_reader_without_an_id_is_in_no_experiments_numbers(broker):
    # They all see the first variant (no id to bucket by): counted, they would tilt its numbers.
    shown = prompts.Decision(prompt=APPEAL, variant=APPEAL.experiment.variants[0])
    prompt_history.record_decision(broker, None, shown, NOW, 31)
    assert prompt_history.counts(broker, "exp:a")["assigned"] == 0
    plain = parse_rules({"version": "p", "prompts": [{"id": "plain", "kind": "membership"}]}).prompts[0]
    prompt_history.record_decision(broker, None, prompts.Decision(prompt=plain), NOW, 31)
    assert prompt_history.counts(broker, "plain")["impressions"] == 1


def test_an_event_counts_only_in_the_bucket_a_decision_gave_the_reader(broker):
    def click(reader, counter="exp:a", prompt=APPEAL) -> bool:
        return prompt_history.record_reader_event(broker, reader, "click", prompt, counter)

    assert not click(READER)  # never assigned: a script's, or a page of other rules
    prompt_history.record_decision(broker, READER, prompts.Decision(prompt=APPEAL, variant=APPEAL.experiment.variants[0]),
                                   NOW, 31)
    assert click(READER) and click(READER)
    assert not click(READER, "exp:control")
    assert not click(None)  # no id: in no experiment
    assert (prompt_history.counts(broker, "exp:a")["click"], prompt_history.counts(broker, "exp:control")["click"]) \
        == (2, 0)
    plain = parse_rules({"version": "p", "prompts": [{"id": "plain", "kind": "membership"}]}).prompts[0]
    assert click(None, "plain", plain) and prompt_history.counts(broker, "plain")["click"] == 1


def test_forget_removes_everything_about_the_reader(broker):
    prompt_history.record_read_and_load(broker, READER, "one", NOW, RULES)
    prompt_history.snooze(broker, READER, "appeal", NOW, 7, 31)
    prompt_history.record_decision(broker, READER, prompts.Decision(prompt=APPEAL, variant=APPEAL.experiment.variants[0]),
                                   NOW, 31)
    broker.zadd(f"prompt:shown:{READER}:an-ended-campaign", {"1": 1})
    assert prompt_history.assigned(broker, READER) == {"appeal": "exp:a"}
    prompt_history.forget(broker, READER)
    # Only the mark that keeps a read queued elsewhere from counting the reader again, for a minute.
    assert broker.keys(f"prompt:*{READER}*") == [f"prompt:forgotten:{READER}".encode()]
    assert 0 < broker.ttl(f"prompt:forgotten:{READER}") <= prompt_history.FORGOTTEN_SECONDS
    assert prompt_history.assigned(broker, READER) == {}


def test_a_page_view_racing_an_opt_out_counts_and_records_nothing(broker):
    choices = [prompts.Decision(prompt=RULES.prompts[1])]
    prompt_history.forget(broker, READER)
    outcome = prompt_history.decide_and_record(broker, READER, "one", choices, NOW, RULES)
    assert outcome == (prompts.NOTHING, prompt_history.NO_CLAIM)
    assert broker.keys(f"prompt:*{READER}*") == [f"prompt:forgotten:{READER}".encode()]


# ---------------------------------------------------------------- the reader's buckets, for attribution

# Half the readers in the control: reader ids are picked for their bucket (prompts.bucket).
SPLIT = parse_rules({"version": "s", "prompts": [
    {"id": "appeal", "kind": "membership", "priority": 2,
     "experiment": {"name": "split", "control_share": 0.5, "variants": [{"id": "split:a"}]}},
    {"id": "daily", "kind": "newsletter", "priority": 1}]})


def reader_in(rules, control: bool) -> str:
    """The first of a fixed line of reader ids whose bucket of the appeal is (or is not) the control."""
    experiment = rules.prompts[0].experiment
    return next(reader for reader in (f"{n:032x}" for n in range(100))
                if (prompts.bucket(experiment, reader) is None) == control)


@pytest.mark.parametrize("control, bucket", [(False, "split:a"), (True, "split:control")])
def test_a_decision_in_redis_keeps_the_readers_bucket_shown_or_not(broker, control, bucket):
    reader = reader_in(SPLIT, control)
    choices = prompts.candidates(SPLIT, prompts.ReaderContext(id=reader), prompts.Story(slug="one"), NOW)
    decision = prompt_history.decide_and_record(broker, reader, "one", choices, NOW, SPLIT).decision
    assert (decision.prompt.id, decision.show) == ("appeal", not control)
    assert prompt_history.assigned(broker, reader) == {"appeal": bucket}
    assert SPLIT.history_days * 86400 - 5 < broker.ttl(f"prompt:assigned:{reader}") <= SPLIT.history_days * 86400


CAPPED_SPLIT = parse_rules({"version": "c", "prompts": [
    {"id": "appeal", "kind": "membership", "priority": 2, "frequency_cap": {"impressions": 2, "window_days": 30},
     "experiment": {"name": "split", "control_share": 0.5, "variants": [{"id": "split:a"}]}},
    {"id": "daily", "kind": "newsletter", "priority": 1}]})


@pytest.mark.parametrize("control", [False, True])
def test_the_control_is_held_to_the_cap_as_the_variants_readers_are(broker, control):
    """Both get the appeal's bucket twice (the cap), then the sign-up, shown or held back alike;
    only the variant's count impressions."""
    reader, story = reader_in(CAPPED_SPLIT, control), prompts.Story(slug="one")
    context = prompts.ReaderContext(id=reader)
    got = []
    for hour in range(3):
        at = NOW + timedelta(hours=hour)
        choices = prompts.candidates(CAPPED_SPLIT, context, story, at)
        got.append(prompt_history.decide_and_record(broker, reader, f"story-{hour}", choices, at, CAPPED_SPLIT)
                   .decision.prompt.id)
    assert got == ["appeal", "appeal", "daily"]
    bucket = "split:control" if control else "split:a"
    assert prompt_history.counts(broker, bucket)["assigned"] == 2
    assert prompt_history.counts(broker, bucket)["impressions"] == (0 if control else 2)


def test_a_recorded_decision_keeps_the_readers_bucket_shown_or_not(broker):
    shown = prompts.Decision(prompt=APPEAL, variant=APPEAL.experiment.variants[0])
    prompt_history.record_decision(broker, READER, shown, NOW, 31)
    prompt_history.record_decision(broker, "c" * 32, prompts.Decision(prompt=APPEAL, control=True), NOW, 31)
    prompt_history.record_decision(broker, None, shown, NOW, 31)  # a reader not counted: nothing of theirs
    assert prompt_history.assigned(broker, READER) == {"appeal": "exp:a"}
    assert prompt_history.assigned(broker, "c" * 32) == {"appeal": "exp:control"}
    assert broker.keys("prompt:assigned:-") == []
    assert 30 * 86400 < broker.ttl(f"prompt:assigned:{READER}") <= 31 * 86400


MANY = parse_rules({"version": "m", "prompts": [
    {"id": f"appeal-{n}", "kind": "membership", "priority": -n} for n in range(prompt_history.MAX_ASSIGNED + 3)]})


def test_the_buckets_kept_are_bounded_alike_in_all_three_scripts(broker):
    python_reader, redis_reader, claimed_reader = "d" * 32, "e" * 32, "f" * 32
    later = DeferredReads(broker, delay=3600)  # a page view answered from a claim, recorded later
    for n, prompt in enumerate(MANY.prompts):
        at = NOW + timedelta(minutes=n)
        prompt_history.record_decision(broker, python_reader, prompts.Decision(prompt=prompt), at, 31)
        choice = prompts.Decision(prompt=prompt)
        prompt_history.decide_and_record(broker, redis_reader, f"story-{n}", [choice], at, MANY)
        later.add(claimed_reader, f"story-{n}", at.timestamp(), 31 * 86400, shown=choice)
        later.flush()
        for reader in (python_reader, redis_reader, claimed_reader):
            kept = prompt_history.assigned(broker, reader)
            assert 0 < len(kept) <= prompt_history.MAX_ASSIGNED and kept[prompt.id] == prompt.id
    assert prompt_history.assigned(broker, python_reader) == prompt_history.assigned(broker, redis_reader) == \
        prompt_history.assigned(broker, claimed_reader)


# ---------------------------------------------------------------- Redis's decision is Python's

PROMPT = st.fixed_dictionaries({
    "min_reads": st.integers(0, 4), "read_window_days": st.sampled_from([1, 7, 30]),
    "frequency_cap": st.fixed_dictionaries({"impressions": st.integers(0, 3), "window_days": st.sampled_from([1, 7]),
                                            "min_gap_hours": st.sampled_from([0, 0.0001, 0.5, 12, 48])}),
    "snooze_days": st.sampled_from([0, 2]),
}, optional={"control_share": st.sampled_from([0.0, 0.5, 0.99])})  # in an experiment: the control's share
# Near the windows' and gaps' edges (1, 7, 30 days; 12 and 48 hours) as often as anywhere.
DAYS_AGO = st.one_of(st.floats(0, 40, allow_nan=False),
                     st.sampled_from([0.49, 0.51, 0.99, 1.01, 1.99, 2.01, 6.99, 7.01, 29.99, 30.01]))


def one_prompt(min_reads=0, window=7, cap=0, cap_window=7, gap=0, snooze=0) -> list[dict]:
    return [{"min_reads": min_reads, "read_window_days": window, "snooze_days": snooze,
             "frequency_cap": {"impressions": cap, "window_days": cap_window, "min_gap_hours": gap}}]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(rules=one_prompt(gap=0.0001), reads=[], shown=[(0, 0.2 / 86400)], snoozed=[])  # a gap under a second
@example(rules=one_prompt(gap=12), reads=[], shown=[(0, 0.51)], snoozed=[])           # just past the gap
@example(rules=one_prompt(gap=12), reads=[], shown=[(0, 0.49)], snoozed=[])           # just inside it
@example(rules=one_prompt(cap=2, cap_window=1), reads=[], shown=[(0, 0.2), (0, 1.01)], snoozed=[])
@example(rules=one_prompt(cap=2, cap_window=1), reads=[], shown=[(0, 0.2), (0, 0.99)], snoozed=[])
@example(rules=one_prompt(min_reads=3, window=7), reads=[1, 6.99], shown=[], snoozed=[])
@example(rules=one_prompt(min_reads=3, window=7), reads=[1, 7.01], shown=[], snoozed=[])
@example(rules=one_prompt() * 2, reads=[], shown=[], snoozed=[(0, 0.5), (1, -0.5)])
# The same prompt again until its cap is full, then nothing: unless a later one is free then,
@example(rules=one_prompt(cap=2) + one_prompt(), reads=[], shown=[], snoozed=[])
# and only until the earlier one's snooze or the later one's cap ends,
@example(rules=one_prompt() + one_prompt(cap=2) + one_prompt(cap=1), reads=[], shown=[(2, 0.5)], snoozed=[(0, 1)])
# and not when an earlier one, short of stories, ends its views first.
@example(rules=one_prompt(min_reads=3) + one_prompt(cap=3) + one_prompt(cap=1), reads=[], shown=[(2, 0.5)], snoozed=[])
@given(rules=st.lists(PROMPT, min_size=1, max_size=3), reads=st.lists(DAYS_AGO, max_size=6),
       shown=st.lists(st.tuples(st.integers(0, 2), DAYS_AGO), max_size=5),
       snoozed=st.lists(st.tuples(st.integers(0, 2), st.floats(-3, 3, allow_nan=False)), max_size=2))
def test_the_decision_in_redis_is_the_decision_in_python(broker, rules, reads, shown, snoozed):
    active = parse_rules({"version": "x", "prompts": [
        as_prompt(i, p) for i, p in enumerate(rules)]})
    python_reader, redis_reader = secrets.token_hex(16), secrets.token_hex(16)
    for reader in (python_reader, redis_reader):
        given_history(broker, active, reader, reads, shown, snoozed)
    reader = prompts.ReaderContext(id=python_reader)
    story = prompts.Story(slug="today")

    history = prompt_history.record_read_and_load(broker, python_reader, "today", NOW, active)
    in_python = prompts.prompt_decision(active, reader, story, history, NOW)
    choices = prompts.candidates(active, reader, story, NOW)
    in_redis, claim = prompt_history.decide_and_record(broker, redis_reader, "today", choices, NOW, active)

    # Python alone: the events counted with no Redis, the oracle both scripts answer to.
    in_model = prompts.prompt_decision(active, reader, story, modelled_history(active, reads, shown, snoozed), NOW)

    assert outcome(in_redis) == outcome(in_python) == outcome(in_model)
    # What the next page views get, this decision's own impression counted.
    now_shown = [(active.prompts.index(in_redis.prompt), 0.0)] if in_redis.prompt else []
    assert_claim(Later(active, reader, story, reads, shown + now_shown, snoozed), in_redis, claim)
    prompt_history.record_decision(broker, python_reader, in_python, NOW, active.history_days)
    # Recorded as record_decision records it: the impression, and the reader's bucket.
    assert prompt_history.load(broker, redis_reader, NOW, active).impressions == \
        prompt_history.load(broker, python_reader, NOW, active).impressions
    assert prompt_history.assigned(broker, redis_reader) == prompt_history.assigned(broker, python_reader)
    ttls = [broker.ttl(f"prompt:assigned:{reader}") for reader in (python_reader, redis_reader)]
    assert abs(ttls[0] - ttls[1]) <= 1


def as_prompt(index: int, drawn: dict) -> dict:
    prompt = drawn | {"id": f"p{index}", "kind": "membership", "priority": -index}
    if "control_share" in drawn:  # the control is held to the cap as the variant is shown
        del prompt["control_share"]
        prompt["experiment"] = {"name": f"e{index}", "control_share": drawn["control_share"],
                                "variants": [{"id": f"e{index}:a"}]}
    return prompt


def outcome(decision: prompts.Decision) -> tuple:
    return decision.prompt and decision.prompt.id, decision.articles_read


@dataclass(frozen=True)
class Later:
    """The history given, and what a later page view decides on it (the oracle, in Python)."""

    active: object
    reader: prompts.ReaderContext
    story: prompts.Story
    reads: list
    shown: list
    snoozed: list

    def decided(self, at: float, more_reads: int = 0, more_shown: tuple = ()) -> str | None:
        """The prompt shown (its id; None for nothing) at `at`, after `more_reads` other stories
        read then and `more_shown` impressions ((prompt index, epoch seconds)) since now."""
        moment = datetime.fromtimestamp(at, timezone.utc)
        history = modelled_history(self.active, self.reads, self.shown, self.snoozed, moment, more_reads, more_shown)
        decision = prompts.prompt_decision(self.active, self.reader, self.story, history, moment)
        return decision.prompt and decision.prompt.id


def assert_claim(later: Later, decision: prompts.Decision, claim: prompt_history.Claim) -> None:
    """What the script answers with its decision holds for every page view it claims, whatever
    they read (none more, or one more story each), and no further: one view more, or a moment
    after its end, and the answer may differ."""
    now = NOW.timestamp()
    if claim.views == 0:  # no claim: one more story read, and something may show at once
        assert later.decided(now + 1e-6, more_reads=1) is not None
        return
    answer = decision.prompt.id if claim.again else None
    index = later.active.prompts.index(decision.prompt) if claim.again else None
    end = min(claim.until, now + 40 * 86400)  # no end of its own: it holds past any window
    views = claim.views or 5
    assert claim.until > now
    for at in (now + 1e-6, (now + end) / 2, end - 0.001):
        for view in sorted({1, 2, views}):
            if view > views:
                continue
            # The impressions the claim's earlier views showed, just before this one (all in any window).
            step = min(0.001, (at - now) / view)
            since = tuple((index, at - step * k) for k in range(1, view)) if claim.again else ()
            for more_reads in (0, view):
                assert later.decided(at, more_reads, since) == answer, (at - now, view, more_reads)
    if claim.views is not None:  # one view past it: another answer
        since = tuple((index, now + 1e-6 * k / (views + 2)) for k in range(1, views + 1)) if claim.again else ()
        assert later.decided(now + 2e-6, views + 1, since) != answer
    if claim.until != float("inf"):  # a moment past its end: another answer, read on or not
        assert {later.decided(claim.until + 0.001, more) for more in (0, prompt_history.MAX_READS)} != {answer}
    if claim.then:  # after its views, all of them shown: nothing until then, read on or not
        assert claim.again and claim.then > now
        shown = tuple((index, now + 1e-6 * k) for k in range(1, claim.views + 1))
        for at in (now + 1e-6 * (claim.views + 1), (now + claim.then) / 2, claim.then - 0.001):
            for more_reads in (0, prompt_history.MAX_READS):
                assert later.decided(at, more_reads, shown) is None, (at - now, more_reads)
        assert later.decided(claim.then + 0.001, prompt_history.MAX_READS, shown) is not None


def modelled_history(active, reads, shown, snoozed, at: datetime = NOW, more_reads: int = 0,
                     more_shown: tuple = ()) -> prompts.History:
    """The history given_history leaves and the page view adds ("today", read now), counted in
    Python from the events themselves, as prompt_history documents its keys; as it stands `at`,
    with `more_reads` other stories read then and `more_shown` impressions (index, epoch seconds)."""
    now = at.timestamp()
    read_at = [ago(days) for days in reads] + [NOW.timestamp()] + [now] * more_reads  # each a distinct story
    impressions = {}
    moments = [(index, ago(days)) for index, days in shown] + list(more_shown)
    for index, moment in moments:  # the same moment (to the microsecond, as kept) twice is one impression
        if index < len(active.prompts):
            impressions.setdefault(active.prompts[index], set()).add(moment)
    snoozed_until = {}
    for index, days in snoozed:  # a later snooze of a prompt replaces the earlier
        if index < len(active.prompts):
            snoozed_until[active.prompts[index].id] = ago(-days) + 0.001 * 86400
    return prompts.History(
        reads={w: sum(t > now - w * 86400 for t in read_at) for w in active.read_windows},
        impressions={p.id: (sum(t > now - p.cap_window_days * 86400 for t in times), max(times))
                     for p, times in impressions.items()},
        snoozed=frozenset(id for id, until in snoozed_until.items() if until > now))


def ago(days: float) -> float:
    return (NOW - timedelta(days=days)).timestamp()


def given_history(broker, active, reader, reads, shown, snoozed) -> None:
    for n, days in enumerate(reads):
        prompt_history.record_read_and_load(broker, reader, f"story-{n}", NOW - timedelta(days=days), active)
    for index, days in shown:
        if index < len(active.prompts):
            # In one bucket for every reader given this history (a prompt in an experiment has two).
            decision = prompts.assigned(active.prompts[index], prompts.ReaderContext(id=READER), 0)
            prompt_history.record_decision(broker, reader, decision, NOW - timedelta(days=days), 60)
    for index, days in snoozed:
        if index < len(active.prompts):
            prompt_history.snooze(broker, reader, active.prompts[index].id, NOW + timedelta(days=days), 0.001, 60)
