"""Readers nothing may be shown for a while, answered in process, against a real Redis."""
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
STORY = prompts.Story(slug="one")


@pytest.fixture
def reads(broker):
    return DeferredReads(broker, delay=3600)  # sent only when the test says (flush)


def script_calls(broker) -> int:
    return int(broker.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def decide(broker, quiet, reads, at, slug="one", rules=RULES, story=STORY):
    story = prompts.Story(slug=slug, section=story.section, members_only=story.members_only)
    return quiet_readers.decide(broker, quiet, reads, rules, prompts.ReaderContext(id=READER), story, at)


def test_a_capped_reader_is_answered_in_process_until_the_cap_lets_go(broker, reads):
    quiet = quiet_readers.QuietReaders()
    shown = [decide(broker, quiet, reads, NOW + timedelta(days=d)).show for d in (0, 1)]
    assert shown == [True, True]
    assert not decide(broker, quiet, reads, NOW + timedelta(days=2)).show  # capped: Redis says so, and until when
    calls = script_calls(broker)
    for minutes in (1, 2, 3):
        assert not decide(broker, quiet, reads, NOW + timedelta(days=2, minutes=minutes), slug=f"s{minutes}").show
    assert script_calls(broker) == calls  # no round trip
    assert reads.flush() == 3  # the reads, sent later
    assert prompt_history.stories_read(broker, READER, NOW + timedelta(days=3), 30) == 4

    # Kept LONGEST seconds at most, then asked again (still capped).
    calls = script_calls(broker)
    later = NOW + timedelta(days=2, seconds=quiet_readers.LONGEST + 1)
    assert not decide(broker, quiet, reads, later).show and script_calls(broker) == calls + 1
    # The cap lets go a week after the first impression: the appeal again.
    assert decide(broker, quiet, reads, NOW + timedelta(days=7, seconds=1)).show


def test_a_reader_short_of_the_threshold_is_asked_every_time(broker, reads):
    rules = parse_rules({"version": "m", "prompts": [{"id": "appeal", "kind": "membership", "min_reads": 3}]})
    quiet = quiet_readers.QuietReaders()
    calls = script_calls(broker)
    got = [decide(broker, quiet, reads, NOW + timedelta(minutes=n), slug=f"s{n}", rules=rules).show for n in range(3)]
    assert got == [False, False, True]  # the next read may change the answer: never kept
    assert script_calls(broker) == calls + 3


def test_other_candidates_are_asked_anew(broker, reads):
    """Quiet for the appeal alone says nothing of a story where the sign-up is a candidate too."""
    rules = parse_rules({"version": "two", "prompts": [
        {"id": "appeal", "kind": "membership", "priority": 2, "frequency_cap": {"impressions": 1, "window_days": 7}},
        {"id": "daily", "kind": "newsletter", "priority": 1, "exclude_sections": ["Sport"]}]})
    quiet = quiet_readers.QuietReaders()
    sport = prompts.Story(slug="match", section="Sport")
    assert decide(broker, quiet, reads, NOW, slug="match", rules=rules, story=sport).prompt.id == "appeal"
    assert decide(broker, quiet, reads, NOW + timedelta(minutes=1), slug="match", rules=rules,
                  story=sport).prompt is None  # quiet on sport stories for a week
    news = prompts.Story(slug="news", section="News")
    assert decide(broker, quiet, reads, NOW + timedelta(minutes=2), slug="news", rules=rules,
                  story=news).prompt.id == "daily"


def test_no_candidates_means_no_round_trip_and_the_read_still_counted(broker, reads):
    quiet = quiet_readers.QuietReaders()
    members_only = prompts.Story(slug="gated", members_only=True)  # the appeal's own gate: no slot prompt
    calls = script_calls(broker)
    assert decide(broker, quiet, reads, NOW, slug="gated", story=members_only) is prompts.NOTHING
    assert script_calls(broker) == calls
    reads.flush()
    assert prompt_history.stories_read(broker, READER, NOW, 30) == 1


def test_quiet_spans_are_bounded_and_time_going_back_is_not_quiet():
    quiet = quiet_readers.QuietReaders(most=2)
    quiet.remember(("a",), until=200.0, moment=100.0)
    assert quiet.holds(("a",), 150.0) and not quiet.holds(("a",), 200.0) and not quiet.holds(("a",), 99.0)
    quiet.remember(("a",), until=10_000.0, moment=100.0)
    assert not quiet.holds(("a",), 100.0 + quiet_readers.LONGEST)
    quiet.remember(("b",), until=300.0, moment=100.0)
    quiet.remember(("c",), until=300.0, moment=100.0)  # past `most`: started afresh
    assert not quiet.holds(("a",), 150.0) and quiet.holds(("c",), 150.0)
    quiet.remember(("c",), until=100.0, moment=150.0)  # no longer quiet: forgotten
    assert not quiet.holds(("c",), 150.0)
