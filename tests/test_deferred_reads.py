"""Story reads sent to a real Redis a moment later, in batches, by a thread of the process."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import redis

from newsletter import prompt_history, prompts
from newsletter.deferred_reads import DeferredReads
from newsletter.mailcatcher import free_port
from newsletter.prompt_rules import parse_rules

READER, OTHER = "a" * 32, "b" * 32
NOW = 1_764_072_000.0
KEEP = 31 * 86400


def read_stories(broker, reader: str) -> list[str]:
    return [slug.decode() for slug in broker.zrange(f"prompt:reads:{reader}", 0, -1)]


def wait_for(condition, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_one_thread_sends_the_reads_within_its_delay_and_waits_for_more(broker):
    reads = DeferredReads(broker, delay=0.05)
    reads.add(READER, "one", NOW, KEEP)
    reads.add(READER, "two", NOW + 1, KEEP)
    assert wait_for(lambda: len(read_stories(broker, READER)) == 2)
    assert read_stories(broker, READER) == ["one", "two"]
    assert broker.zscore(f"prompt:reads:{READER}", "two") == NOW + 1
    assert KEEP - 5 < broker.ttl(f"prompt:reads:{READER}") <= KEEP

    threads, connections = sending_threads(), len(broker.connection_pool._in_use_connections)
    for n in range(3, 8):  # later reads, spaced past the delay: the same thread, the same connection
        time.sleep(0.08)
        reads.add(READER, f"story-{n}", NOW + n, KEEP)
    assert wait_for(lambda: len(read_stories(broker, READER)) == 7)
    assert sending_threads() == threads and len(broker.connection_pool._in_use_connections) == connections


def sending_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "deferred-reads" and t.is_alive())


def test_reads_are_bounded_and_trimmed_as_the_decision_trims_them(broker):
    reads = DeferredReads(broker, delay=3600)
    for n in range(prompt_history.MAX_READS + 3):
        reads.add(READER, f"story-{n}", NOW + n, KEEP)
    assert reads.flush() == prompt_history.MAX_READS + 3  # in several script calls
    assert broker.zcard(f"prompt:reads:{READER}") == prompt_history.MAX_READS
    assert broker.zscore(f"prompt:reads:{READER}", "story-2") is None

    full = DeferredReads(broker, delay=3600, most=2)
    for n in range(3):
        full.add(OTHER, f"s{n}", NOW, KEEP)
    assert full.flush() == 2  # the queue holds `most` at most


def test_a_read_queued_before_an_opt_out_does_not_count_the_reader_again(broker):
    reads = DeferredReads(broker, delay=3600)
    reads.add(READER, "one", NOW, KEEP)
    reads.add(OTHER, "one", NOW, KEEP)
    prompt_history.forget(broker, READER)
    reads.flush()
    assert read_stories(broker, READER) == [] and read_stories(broker, OTHER) == ["one"]


def test_redis_away_drops_the_queued_reads_logged_and_later_ones_are_sent(broker, caplog):
    away = redis.Redis(port=free_port(), socket_timeout=0.5, socket_connect_timeout=0.5)
    reads = DeferredReads(away, delay=3600)
    reads.add(READER, "one", NOW, KEEP)
    with caplog.at_level(logging.WARNING, logger="newsletter.deferred_reads"):
        assert reads.flush() == 0
    assert "1 page views not counted" in caplog.text
    assert reads.flush() == 0  # dropped, not retried for ever

    refusing = DeferredReads(broker, delay=3600)
    broker.set(f"prompt:reads:{READER}", "not a sorted set")  # Redis refuses the script (WRONGTYPE)
    refusing.add(READER, "one", NOW, KEEP)
    assert refusing.flush() == 0
    broker.delete(f"prompt:reads:{READER}")
    refusing.add(READER, "two", NOW, KEEP)
    assert refusing.flush() == 1 and read_stories(broker, READER) == ["two"]


def test_a_forked_process_sends_its_own_reads_not_its_parents(broker):
    reads = DeferredReads(broker, delay=3600)
    reads.add(READER, "parent's", NOW, KEEP)
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's result is its exit status
        reads.add(OTHER, "child's", NOW, KEEP)
        os._exit(0 if reads.flush() == 1 else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert read_stories(broker, OTHER) == ["child's"] and read_stories(broker, READER) == []
    assert reads.flush() == 1 and read_stories(broker, READER) == ["parent's"]


def test_a_process_forked_in_the_middle_of_a_send_starts_afresh(broker):
    reads = DeferredReads(broker, delay=3600)
    reads.add(READER, "parent's", NOW, KEEP)
    with reads.lock:  # as if the thread were sending when the process forked
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's result is its exit status
            reads.add(OTHER, "child's", NOW, KEEP)
            os._exit(0 if reads.flush() == 1 else 1)
        _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and read_stories(broker, OTHER) == ["child's"]
    assert reads.flush() == 1 and read_stories(broker, READER) == ["parent's"]  # the parent's, by the parent


def test_close_sends_the_queue_and_ends_the_thread_giving_its_connection_back(broker):
    reads = DeferredReads(broker, delay=0.01)
    reads.add(READER, "one", NOW, KEEP)
    assert wait_for(lambda: read_stories(broker, READER) == ["one"])
    reads.add(READER, "zero", NOW, KEEP)
    reads.flush()  # this thread's connection taken now (close sends from here too)
    in_use = len(broker.connection_pool._in_use_connections)
    threads = sending_threads()
    reads.add(READER, "two", NOW, KEEP)
    reads.close()
    assert sorted(read_stories(broker, READER)) == ["one", "two", "zero"]
    assert wait_for(lambda: sending_threads() == threads - 1)
    assert len(broker.connection_pool._in_use_connections) == in_use - 1


def test_a_process_that_stops_sends_what_it_queued_first(broker, redis_url):
    program = textwrap.dedent(f"""
        from newsletter.deferred_reads import DeferredReads
        from newsletter.redis_url import client
        DeferredReads(client({redis_url!r}), delay=3600).add({READER!r}, "last", {NOW}, {KEEP})
    """)
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)
    assert read_stories(broker, READER) == ["last"]


def test_what_a_claim_showed_is_recorded_as_a_decision_in_redis_records_it(broker):
    """The same keys as DECIDE_SCRIPT leaves for the impression: the reader's, the counters, the bucket."""
    appeal = parse_rules({"version": "d", "prompts": [
        {"id": "appeal", "kind": "membership", "experiment": {
            "name": "e", "control_share": 0.5, "variants": [{"id": "e:a"}]}}]}).prompts[0]
    shown = prompts.Decision(prompt=appeal, variant=appeal.experiment.variants[0])
    control = prompts.Decision(prompt=appeal, control=True)
    reads = DeferredReads(broker, delay=3600)
    reads.add(READER, "one", NOW, KEEP, shown=shown)
    reads.add(READER, "two", NOW + 1, KEEP, shown=shown)
    reads.add(OTHER, "one", NOW, KEEP, shown=control)
    reads.add(OTHER, "two", NOW + 1, KEEP)  # a read, nothing shown
    assert reads.flush() == 4
    assert broker.zrange(f"prompt:shown:{READER}:appeal", 0, -1, withscores=True) == [
        (f"{NOW:.6f}".encode(), NOW), (f"{NOW + 1:.6f}".encode(), NOW + 1)]
    assert KEEP - 5 < broker.ttl(f"prompt:shown:{READER}:appeal") <= KEEP
    counts = prompt_history.counts(broker, "e:a")
    assert (counts["impressions"], counts["assigned"], counts["assigned_readers"]) == (2, 2, 1)
    control_counts = prompt_history.counts(broker, "e:control")
    assert (control_counts["impressions"], control_counts["assigned"]) == (0, 1)  # held to the cap, not shown
    assert broker.zcard(f"prompt:shown:{OTHER}:appeal") == 1
    assert prompt_history.assigned(broker, READER) == {"appeal": "e:a"}
    assert prompt_history.assigned(broker, OTHER) == {"appeal": "e:control"}
    assert read_stories(broker, OTHER) == ["one", "two"]


def test_without_a_delay_each_page_view_is_sent_at_once_by_its_own_thread(broker):
    reads = DeferredReads(broker, delay=0)
    threads = sending_threads()
    reads.add(READER, "one", NOW, KEEP)
    assert read_stories(broker, READER) == ["one"]  # before add returned
    assert sending_threads() == threads and reads.flush() == 0


def test_impressions_recorded_later_are_bounded_and_kept_as_long_as_a_decisions(broker):
    appeal = parse_rules({"version": "d", "prompts": [{"id": "appeal", "kind": "membership"}]}).prompts[0]
    reads = DeferredReads(broker, delay=3600)
    for n in range(prompt_history.MAX_IMPRESSIONS + 2):
        reads.add(READER, f"story-{n}", NOW + n, KEEP, shown=prompts.Decision(prompt=appeal))
    reads.flush()
    shown = f"prompt:shown:{READER}:appeal"
    assert broker.zcard(shown) == prompt_history.MAX_IMPRESSIONS
    assert broker.zscore(shown, f"{NOW + 1:.6f}") is None  # the oldest dropped
    for key in (shown, f"prompt:reads:{READER}", f"prompt:assigned:{READER}"):
        assert KEEP - 5 < broker.ttl(key) <= KEEP, key
