"""Readers nothing may be shown for a while, answered without a round trip, against a real Redis."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from newsletter import prompt_history, prompts, quiet_readers
from newsletter.deferred_reads import DeferredReads
from newsletter.prompt_rules import parse_rules

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
READER = "a" * 32
# The appeal twice a week at most (and not within 12 hours), then nothing: the reader is quiet.
RULES = parse_rules({"version": "q", "prompts": [
    {"id": "appeal", "kind": "membership", "min_reads": 1,
     "frequency_cap": {"impressions": 2, "window_days": 7, "min_gap_hours": 12}}]})


@pytest.fixture
def reads(broker):
    return DeferredReads(broker, delay=3600)  # sent only when the test says (flush)


class Browser:
    """Keeps the last quiet claim the decisions gave, as the web layer's cookie does."""

    def __init__(self) -> None:
        self.fingerprint, self.until = "", 0.0

    def claimed(self, fingerprint: str) -> float:
        return self.until if fingerprint == self.fingerprint else 0.0

    def keep(self, counted: quiet_readers.Counted) -> quiet_readers.Counted:
        if counted.quiet_until:
            self.fingerprint, self.until = counted.fingerprint, counted.quiet_until
        return counted


def script_calls(broker) -> int:
    return int(broker.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def decide(broker, reads, browser, at, slug="one", rules=RULES, section="News", members_only=False):
    story = prompts.Story(slug=slug, section=section, members_only=members_only)
    counted = quiet_readers.decide(broker, reads, rules, prompts.ReaderContext(id=READER), story, at, browser.claimed)
    return browser.keep(counted)


def test_a_capped_reader_is_answered_without_a_round_trip_until_the_cap_lets_go(broker, reads):
    browser = Browser()
    first = decide(broker, reads, browser, NOW)
    assert first.decision.show and first.quiet_until == (NOW + timedelta(hours=12)).timestamp()  # the gap
    second = decide(broker, reads, browser, NOW + timedelta(days=1))
    # The cap's second impression: nothing until the first leaves the week's window.
    assert second.decision.show and second.quiet_until == (NOW + timedelta(days=7)).timestamp()
    calls = script_calls(broker)
    for hours in (1, 30, 100):
        counted = decide(broker, reads, browser, NOW + timedelta(days=1, hours=hours), slug=f"s{hours}")
        assert counted.decision is prompts.NOTHING and counted.fingerprint == second.fingerprint
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
    assert counted.decision is prompts.NOTHING and counted.quiet_until == browser.until


def test_a_reader_short_of_the_threshold_gets_no_claim(broker, reads):
    rules = parse_rules({"version": "m", "prompts": [{"id": "appeal", "kind": "membership", "min_reads": 3}]})
    browser = Browser()
    got = [decide(broker, reads, browser, NOW + timedelta(minutes=n), slug=f"s{n}", rules=rules) for n in range(3)]
    assert [c.decision.show for c in got] == [False, False, True]
    assert [c.quiet_until for c in got] == [0, 0, 0]  # the next read may change the answer


def test_other_prompts_in_play_have_another_fingerprint(broker, reads):
    """Quiet for the appeal alone says nothing of a story where the sign-up is in play too."""
    rules = parse_rules({"version": "two", "prompts": [
        {"id": "appeal", "kind": "membership", "priority": 2, "frequency_cap": {"impressions": 1, "window_days": 7}},
        {"id": "daily", "kind": "newsletter", "priority": 1, "exclude_sections": ["Sport"]}]})
    browser = Browser()
    sport = decide(broker, reads, browser, NOW, slug="match", rules=rules, section="Sport")
    assert sport.decision.prompt.id == "appeal" and sport.quiet_until > NOW.timestamp()
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
    assert quiet_readers.fingerprint(prompts.in_play(same, reader, story, NOW)) == \
        quiet_readers.fingerprint(prompts.in_play(RULES, reader, story, NOW))
    changes = [{"min_reads": 2}, {"read_window_days": 7}, {"frequency_cap": {"impressions": 3, "window_days": 7}},
               {"frequency_cap": {"impressions": 2, "window_days": 8, "min_gap_hours": 12}},
               {"frequency_cap": {"impressions": 2, "window_days": 7, "min_gap_hours": 11}},
               {"experiment": {"name": "e", "variants": [{"id": "e:a"}]}},
               {"experiment": {"name": "e", "control_share": 0.2, "variants": [{"id": "e:a"}]}}]
    marks = {quiet_readers.fingerprint(prompts.in_play(parse_rules({"version": "v", "prompts": [appeal | change]}),
                                                       reader, story, NOW))
             for change in changes}
    assert len(marks) == len(changes) and quiet_readers.fingerprint(prompts.in_play(RULES, reader, story, NOW)) \
        not in marks
    assert len(marks.pop()) == 16
