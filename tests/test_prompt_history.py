"""Reader history and prompt counters in a real Redis, at chosen moments."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from newsletter import prompt_history, prompts
from newsletter.prompt_rules import parse_rules

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
READER = "b" * 32
RULES = parse_rules({"version": "t", "prompts": [
    {"id": "appeal", "kind": "membership", "min_reads": 3, "snooze_days": 7,
     "experiment": {"name": "exp", "variants": [{"id": "exp:a"}]}}]})
APPEAL = RULES.prompts[0]


def test_reads_are_distinct_stories_with_their_last_time(broker):
    for slug, days in (("one", 3), ("two", 2), ("one", 1)):
        prompt_history.record_read_and_load(broker, READER, slug, NOW - timedelta(days=days), 31)
    history = prompt_history.load(broker, READER, NOW)
    assert history.reads == {"one": (NOW - timedelta(days=1)).timestamp(),
                             "two": (NOW - timedelta(days=2)).timestamp()}


def test_history_is_bounded_and_expires(broker):
    for n in range(prompt_history.MAX_READS + 25):
        prompt_history.record_read_and_load(broker, READER, f"story-{n}", NOW + timedelta(seconds=n), 31)
    history = prompt_history.load(broker, READER, NOW)
    assert len(history.reads) == prompt_history.MAX_READS
    assert "story-0" not in history.reads and f"story-{prompt_history.MAX_READS + 24}" in history.reads
    assert 30 * 86400 < broker.ttl(f"prompt:reads:{READER}") <= 31 * 86400


def test_impressions_and_the_assigned_counters(broker):
    decision = prompts.Decision(prompt=APPEAL, variant=APPEAL.experiment.variants[0], articles_read=3)
    prompt_history.record_decision(broker, READER, decision, NOW, 31)
    prompt_history.record_decision(broker, READER, decision, NOW + timedelta(hours=1), 31)
    history = prompt_history.load(broker, READER, NOW + timedelta(hours=2))
    assert history.impressions == {"appeal": (NOW.timestamp(), (NOW + timedelta(hours=1)).timestamp())}
    counted = prompt_history.counts(broker, "exp:a")
    assert counted["impressions"] == 2 and counted["assigned"] == 2 and counted["assigned_readers"] == 1
    assert broker.ttl(f"prompt:shown:{READER}") > 0


def test_the_control_is_assigned_but_makes_no_impression(broker):
    decision = prompts.Decision(prompt=APPEAL, control=True)
    prompt_history.record_decision(broker, READER, decision, NOW, 31)
    assert prompt_history.load(broker, READER, NOW).impressions == {}
    counted = prompt_history.counts(broker, "exp:control")
    assert counted["assigned_readers"] == 1 and counted["impressions"] == 0


def test_a_snooze_ends_when_its_days_are_over(broker):
    prompt_history.snooze(broker, READER, "appeal", NOW, 7, 31)
    assert prompt_history.load(broker, READER, NOW + timedelta(days=6, hours=23)).snoozed == {"appeal"}
    assert prompt_history.load(broker, READER, NOW + timedelta(days=7, seconds=1)).snoozed == frozenset()
    assert broker.ttl(f"prompt:snooze:{READER}") > 7 * 86400


def test_events_count_per_variant_and_distinct_readers(broker):
    for reader in (READER, READER, "c" * 32, None):
        prompt_history.record_event(broker, reader, "seen", "exp:a")
    prompt_history.record_event(broker, READER, "click", "exp:a")
    counted = prompt_history.counts(broker, "exp:a")
    assert (counted["seen"], counted["seen_readers"], counted["click"], counted["dismiss"]) == (4, 2, 1, 0)


def test_forget_removes_everything_about_the_reader(broker):
    prompt_history.record_read_and_load(broker, READER, "one", NOW, 31)
    prompt_history.snooze(broker, READER, "appeal", NOW, 7, 31)
    prompt_history.forget(broker, READER)
    assert broker.keys(f"prompt:*{READER}*") == []
