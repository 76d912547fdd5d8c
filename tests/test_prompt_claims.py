"""Page views answered from the reader's claim, without a round trip, against a real Redis."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from newsletter import prompt_claims, prompt_history, prompts
from newsletter.deferred_reads import DeferredReads
from newsletter.prompt_rules import parse_rules

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
READER = "a" * 32
# The appeal twice a week at most (and not within 12 hours), then nothing: the reader is quiet.
RULES = parse_rules({"version": "q", "prompts": [
    {"id": "appeal", "kind": "membership", "min_reads": 1,
     "frequency_cap": {"impressions": 2, "window_days": 7, "min_gap_hours": 12}}]})
# The shipped rules' shape: the appeal after 3 stories, 4 a month with no gap; the sign-up 3 a week, a day apart.
SITE = parse_rules({"version": "site", "prompts": [
    {"id": "appeal", "kind": "membership", "priority": 50, "min_reads": 3, "read_window_days": 30,
     "frequency_cap": {"impressions": 4, "window_days": 30, "min_gap_hours": 0},
     "experiment": {"name": "e", "control_share": 0.1, "variants": [{"id": "e:a"}, {"id": "e:b"}]}},
    {"id": "daily", "kind": "newsletter", "priority": 10, "min_reads": 1,
     "frequency_cap": {"impressions": 3, "window_days": 7, "min_gap_hours": 24}}]})


@pytest.fixture
def reads(broker):
    queue = DeferredReads(broker, delay=3600)  # sent only when the test says (flush)
    yield queue
    queue.close()  # what is left, while the test's Redis is there


class Browser:
    """Keeps the claim the decisions leave, as the web layer's cookie does."""

    def __init__(self) -> None:
        self.claim: prompt_claims.Claim | None = None

    def keep(self, counted: prompt_claims.Counted) -> prompt_claims.Counted:
        if counted.changed:
            self.claim = counted.claim
        return counted


def script_calls(broker) -> int:
    return int(broker.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def decide(broker, reads, browser, at, slug="one", rules=RULES, section="News", members_only=False,
           reader=READER):
    story = prompts.Story(slug=slug, section=section, members_only=members_only)
    counted = prompt_claims.decide(broker, reads, rules, prompts.ReaderContext(id=reader), story, at,
                                   browser.claim)
    return browser.keep(counted)


def visits(broker, reads, browser, minutes, reader, rules=SITE) -> list[prompt_claims.Counted]:
    """A page view a minute, each read and impression in Redis before the next (as 50 ms later would be)."""
    counted = []
    for n in minutes:
        counted.append(decide(broker, reads, browser, NOW + timedelta(minutes=n), slug=f"s{n}", rules=rules,
                              reader=reader))
        reads.flush()
    return counted


def test_a_capped_reader_is_answered_without_a_round_trip_until_the_cap_lets_go(broker, reads):
    browser = Browser()
    first = decide(broker, reads, browser, NOW)
    assert first.decision.show and first.claim.until == (NOW + timedelta(hours=12)).timestamp()  # the gap
    assert first.claim.views is None and first.claim.shown == -1  # nothing, on any number of views
    second = decide(broker, reads, browser, NOW + timedelta(days=1))
    # The cap's second impression: nothing until the first leaves the week's window.
    assert second.decision.show and second.claim.until == (NOW + timedelta(days=7)).timestamp()
    calls = script_calls(broker)
    for hours in (1, 30, 100):
        counted = decide(broker, reads, browser, NOW + timedelta(days=1, hours=hours), slug=f"s{hours}")
        assert counted.decision is prompts.NOTHING and counted.fingerprint == second.fingerprint
        assert not counted.changed  # the same claim: no cookie to set
    assert script_calls(broker) == calls  # no round trip
    assert reads.flush() == 3  # the reads, sent later
    assert prompt_history.stories_read(broker, READER, NOW + timedelta(days=6), 30) == 4  # "one" twice is one
    # The cap lets go a week after the first impression: the appeal again.
    assert decide(broker, reads, browser, NOW + timedelta(days=7, seconds=1)).decision.show


def test_without_the_claim_redis_is_asked_and_says_the_same(broker, reads):
    browser = Browser()
    decide(broker, reads, browser, NOW)
    decide(broker, reads, browser, NOW + timedelta(days=1))
    forgetful = Browser()  # cookies cleared: asked again, nothing again, the claim again
    counted = decide(broker, reads, forgetful, NOW + timedelta(days=2))
    assert counted.decision is prompts.NOTHING and counted.claim == browser.claim


def test_a_reader_short_of_the_threshold_is_quiet_for_the_views_before_it_reaches_it(broker, reads):
    rules = parse_rules({"version": "m", "prompts": [{"id": "appeal", "kind": "membership", "min_reads": 3,
                                                      "frequency_cap": {"impressions": 1, "window_days": 7}}]})
    browser = Browser()
    first = decide(broker, reads, browser, NOW, rules=rules)
    assert first.decision is prompts.NOTHING and first.claim.views == 1 and first.claim.shown == -1
    calls = script_calls(broker)
    second = decide(broker, reads, browser, NOW + timedelta(minutes=1), slug="s1", rules=rules)
    assert second.decision is prompts.NOTHING and script_calls(broker) == calls
    assert second.changed and second.claim is None  # used up: the next view asks Redis
    reads.flush()  # one call
    third = decide(broker, reads, browser, NOW + timedelta(minutes=2), slug="s2", rules=rules)
    assert third.decision.show and script_calls(broker) == calls + 2


def test_a_story_read_again_on_a_claimed_view_only_delays_the_prompt(broker, reads):
    """Each view is taken to add a story: one read twice adds none, so the prompt comes a view later."""
    rules = parse_rules({"version": "m", "prompts": [{"id": "appeal", "kind": "membership", "min_reads": 3}]})
    browser = Browser()
    decide(broker, reads, browser, NOW, slug="a", rules=rules)
    decide(broker, reads, browser, NOW + timedelta(minutes=1), slug="a", rules=rules)  # claimed, read again
    reads.flush()
    assert not decide(broker, reads, browser, NOW + timedelta(minutes=2), slug="b", rules=rules).decision.show
    assert decide(broker, reads, browser, NOW + timedelta(minutes=3), slug="c", rules=rules).decision.show


def test_the_appeal_shows_again_from_its_claim_its_impressions_recorded_a_moment_later(broker, reads):
    browser, reader = Browser(), "c" * 32
    assert not prompts.assigned(SITE.prompts[0], prompts.ReaderContext(id=reader), 0).control
    views = visits(broker, reads, browser, range(3), reader)
    assert [v.decision.prompt.id if v.decision.prompt else None for v in views] == ["daily", None, "appeal"]
    appeal = views[2]
    assert appeal.claim.views == 3 and appeal.claim.shown == 0 and appeal.claim.articles_read == 3
    calls = script_calls(broker)
    again = [decide(broker, reads, browser, NOW + timedelta(minutes=n), slug=f"s{n}", rules=SITE, reader=reader)
             for n in range(3, 6)]
    assert script_calls(broker) == calls
    assert [v.decision for v in again] == [
        prompts.Decision(appeal.decision.prompt, appeal.decision.variant, False, n) for n in (4, 5, 6)]
    assert [v.claim.views for v in again[:2]] == [2, 1]
    # The cap is full after the last: nothing then, until the sign-up's day is over (no round trip).
    assert again[2].claim == prompt_claims.Claim(appeal.fingerprint, (NOW + timedelta(days=1)).timestamp(), None, -1)
    assert reads.flush() == 3
    counter = prompt_history.counter_id(appeal.decision)
    # As if each had been decided in Redis: four impressions, the cap reached, the bucket kept.
    assert prompt_history.counts(broker, counter)["impressions"] == 4
    history = prompt_history.load(broker, reader, NOW + timedelta(minutes=6), SITE)
    assert history.impressions["appeal"][0] == 4 and history.reads[30] == 6
    assert prompt_history.assigned(broker, reader) == {"appeal": counter, "daily": "daily"}
    calls = script_calls(broker)
    capped = decide(broker, reads, browser, NOW + timedelta(minutes=6), slug="s6", rules=SITE, reader=reader)
    assert capped.decision is prompts.NOTHING and script_calls(broker) == calls and not capped.changed
    # Redis, asked, says the same: the cap reached, the sign-up shown within the day.
    asked = decide(broker, reads, Browser(), NOW + timedelta(minutes=7), slug="s7", rules=SITE, reader=reader)
    assert asked.decision is prompts.NOTHING and asked.claim == again[2].claim


def test_a_control_readers_claim_shows_nothing_and_holds_it_to_the_cap(broker, reads):
    reader = next(r * 32 for r in "0123456789abcdef"
                  if prompts.assigned(SITE.prompts[0], prompts.ReaderContext(id=r * 32), 0).control)
    browser = Browser()
    views = visits(broker, reads, browser, range(6), reader)
    assert [v.decision.show for v in views] == [True, False, False, False, False, False]
    assert views[2].decision.control and views[2].claim.shown == 0 and views[5].decision.control
    control = prompt_history.counter_id(views[2].decision)
    assert prompt_history.counts(broker, control)["impressions"] == 0
    assert prompt_history.counts(broker, control)["assigned"] == 4
    assert prompt_history.load(broker, reader, NOW + timedelta(minutes=6), SITE).impressions["appeal"][0] == 4


def test_a_claim_ends_at_its_time_whatever_views_it_has_left(broker, reads):
    """The appeal's claim lasts while the stories that let it show are inside the read window."""
    browser, reader = Browser(), "c" * 32
    for n in range(3):
        decide(broker, reads, browser, NOW + timedelta(days=n), slug=f"s{n}", rules=SITE, reader=reader)
    claim = browser.claim
    assert claim.shown == 0 and claim.until == (NOW + timedelta(days=30)).timestamp()  # the first story leaves
    reads.flush()
    calls = script_calls(broker)
    late = decide(broker, reads, browser, NOW + timedelta(days=30, seconds=1), slug="s3", rules=SITE, reader=reader)
    assert script_calls(broker) == calls + 1  # asked again: two stories in the window, and this one: three
    assert late.decision.prompt.id == "appeal"


def test_other_prompts_in_play_have_another_fingerprint(broker, reads):
    """Quiet for the appeal alone says nothing of a story where the sign-up is in play too."""
    rules = parse_rules({"version": "two", "prompts": [
        {"id": "appeal", "kind": "membership", "priority": 2, "frequency_cap": {"impressions": 1, "window_days": 7}},
        {"id": "daily", "kind": "newsletter", "priority": 1, "exclude_sections": ["Sport"]}]})
    browser = Browser()
    sport = decide(broker, reads, browser, NOW, slug="match", rules=rules, section="Sport")
    assert sport.decision.prompt.id == "appeal" and sport.claim.until > NOW.timestamp()
    news = decide(broker, reads, browser, NOW + timedelta(minutes=2), slug="news", rules=rules)
    assert news.fingerprint != sport.fingerprint and news.decision.prompt.id == "daily"
    # New rules with the same numbers but another cap: another fingerprint too.
    other = parse_rules({"version": "two", "prompts": [
        {"id": "appeal", "kind": "membership", "priority": 2, "frequency_cap": {"impressions": 2, "window_days": 7}},
        {"id": "daily", "kind": "newsletter", "priority": 1, "exclude_sections": ["Sport"]}]})
    again = decide(broker, reads, browser, NOW + timedelta(minutes=3), slug="match", rules=other, section="Sport")
    assert again.fingerprint != sport.fingerprint and again.decision.prompt.id == "appeal"


def test_no_prompt_in_play_means_no_round_trip_and_the_read_still_counted(broker, reads):
    calls = script_calls(broker)
    counted = decide(broker, reads, Browser(), NOW, slug="gated", members_only=True)  # the gate is its appeal
    assert counted.decision is prompts.NOTHING and script_calls(broker) == calls
    reads.flush()
    assert prompt_history.stories_read(broker, READER, NOW, 30) == 1


def test_the_fingerprint_is_the_same_for_the_same_rules_and_not_for_other_numbers():
    reader, story = prompts.ReaderContext(id=READER), prompts.Story(slug="x")
    appeal = {"id": "appeal", "kind": "membership", "min_reads": 1,
              "frequency_cap": {"impressions": 2, "window_days": 7, "min_gap_hours": 12}}
    same = parse_rules({"version": "another", "prompts": [appeal]})  # another process's, another version
    assert prompt_claims.fingerprint(prompts.in_play(same, reader, story, NOW)) == \
        prompt_claims.fingerprint(prompts.in_play(RULES, reader, story, NOW))
    changes = [{"min_reads": 2}, {"read_window_days": 7}, {"frequency_cap": {"impressions": 3, "window_days": 7}},
               {"frequency_cap": {"impressions": 2, "window_days": 8, "min_gap_hours": 12}},
               {"frequency_cap": {"impressions": 2, "window_days": 7, "min_gap_hours": 11}},
               {"experiment": {"name": "e", "variants": [{"id": "e:a"}]}},
               {"experiment": {"name": "e", "control_share": 0.2, "variants": [{"id": "e:a"}]}}]
    marks = {prompt_claims.fingerprint(prompts.in_play(parse_rules({"version": "v", "prompts": [appeal | change]}),
                                                       reader, story, NOW))
             for change in changes}
    assert len(marks) == len(changes) and prompt_claims.fingerprint(prompts.in_play(RULES, reader, story, NOW)) \
        not in marks
    assert len(marks.pop()) == 16


def test_a_view_outside_a_claim_counted_in_views_ends_it(broker, reads):
    """The read of a story with other prompts in play (or none) is one the claim did not count."""
    rules = parse_rules({"version": "v", "prompts": [
        {"id": "daily", "kind": "newsletter", "min_reads": 3, "exclude_sections": ["Sport"]}]})
    browser = Browser()
    first = decide(broker, reads, browser, NOW, slug="a", rules=rules)
    assert first.claim.views == 1
    sport = decide(broker, reads, browser, NOW + timedelta(minutes=1), slug="b", rules=rules, section="Sport")
    assert sport.changed and browser.claim is None  # no prompt in play there; its read still counts
    reads.flush()
    assert decide(broker, reads, browser, NOW + timedelta(minutes=2), slug="c", rules=rules).decision.show


def test_the_appeal_shown_outside_its_claim_ends_the_claim_so_the_cap_holds(broker, reads):
    rules = parse_rules({"version": "v", "prompts": [
        {"id": "daily", "kind": "newsletter", "priority": 2, "min_reads": 6, "exclude_sections": ["News", "Opinion"]},
        {"id": "appeal", "kind": "membership", "priority": 1, "exclude_sections": ["Opinion"],
         "frequency_cap": {"impressions": 3, "window_days": 30}}]})
    browser = Browser()
    at = iter(NOW + timedelta(minutes=n) for n in range(100))

    def view(slug, section):
        counted = decide(broker, reads, browser, next(at), slug=slug, rules=rules, section=section)
        reads.flush()
        return counted.decision.prompt and counted.decision.prompt.id

    assert [view(f"o{n}", "Opinion") for n in range(3)] == [None, None, None]
    assert view("n1", "News") == "appeal" and browser.claim.views == 2  # the appeal on two more News views
    assert view("s1", "Sport") == "appeal" and browser.claim is None  # shown outside the claim: it ends
    assert view("n2", "News") == "appeal"  # the third, decided in Redis
    assert view("n3", "News") is None  # the cap holds


def test_a_claim_of_nothing_until_a_time_outlasts_views_outside_it(broker, reads):
    browser = Browser()
    decide(broker, reads, browser, NOW)  # the appeal; its gap: nothing for 12 hours
    held = browser.claim
    other = decide(broker, reads, browser, NOW + timedelta(minutes=1), slug="gated", members_only=True)
    assert other.decision is prompts.NOTHING and not other.changed and browser.claim == held
