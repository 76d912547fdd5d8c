"""Page views counted in Redis a moment after they are answered, many in one round trip.

A page view whose decision needs nothing from Redis (newsletter.prompt_claims: the reader's
claim answers it, or no prompt is a candidate) still counts the story read, and the
impression of the prompt the claim showed, but need not wait for Redis to count them: they
are queued in process, and a thread of the process sends what came in `delay` seconds
(PROMPT_READS_DELAY_SECONDS) after the first of them, in one script call per few hundred
page views, into the keys newsletter.prompt_history reads (0: each at once, in the page
view's own request, as the tests have it). The thread holds one Redis
connection for the process's life.

What that costs: a read reaches Redis up to `delay` seconds late, and a process that dies
(killed, not stopped: a stop sends the queue first) loses the page views it had queued, as
losing Redis loses the history (a meter, not a ledger). While Redis is away the reads are
dropped, logged; the queue never holds more than `most`. A reader who opts out in between
is not counted again by a late read (prompt_history.forget leaves a mark the script heeds).
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque

import redis

from newsletter import prompt_history
from newsletter.prompt_scripts import READS_SCRIPT
from newsletter.prompts import Decision
from newsletter.redis_script import ThreadScript

log = logging.getLogger(__name__)

BATCH = 400  # page views per script call: about 2 ms of Redis's time, others' commands wait no longer
NOTHING_SHOWN = ("", "", "0")


class DeferredReads:
    """`add(reader_id, slug, moment, keep_seconds, shown)` queues a page view; a thread of the
    process sends them, waiting (no CPU) while there is nothing to send."""

    def __init__(self, client: redis.Redis, delay: float, most: int = 100_000) -> None:
        self.script, self.delay, self.most = ThreadScript(client, READS_SCRIPT), delay, most
        self.queue: deque[tuple] = deque()
        self.lock, self.wake = threading.Lock(), threading.Event()
        self.sender: int | None = None  # the pid the sending thread runs in
        self.closed = False
        atexit.register(self.flush)  # a stopping process sends what it queued (a forked one too)
        # A process forked meanwhile (even in the middle of a send, the lock held) starts afresh:
        # the queue it copied is its parent's to send.
        os.register_at_fork(after_in_child=self._forked)

    def add(self, reader_id: str, slug: str, moment: float, keep_seconds: int, shown: Decision | None = None) -> None:
        """The story read, and the prompt a claim `shown` (the control's decision too)."""
        if len(self.queue) < self.most:
            what = NOTHING_SHOWN if shown is None else (
                shown.prompt.id, prompt_history.counter_id(shown), "1" if shown.show else "0")
            self.queue.append((reader_id, slug, f"{moment:.6f}", keep_seconds, *what))
        if not self.delay:  # at once, in the caller's thread: the next page view finds it in Redis
            self.flush()
            return
        if self.sender != os.getpid():
            self._start()
        if not self.wake.is_set():  # set already: the thread has yet to clear it, and sends this read after
            self.wake.set()

    def flush(self) -> int:
        """Send every read queued now; the number sent. Reads Redis refuses are dropped, logged."""
        sent = 0
        with self.lock:
            while self.queue:
                batch = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]
                try:
                    self.script(keys=(), args=[prompt_history.MAX_READS, prompt_history.MAX_IMPRESSIONS,
                                               prompt_history.MAX_ASSIGNED, *(v for view in batch for v in view)])
                except redis.RedisError as error:
                    log.warning("%d page views not counted: Redis did not answer or refused (%s)",
                                len(batch) + len(self.queue), error)
                    self.queue.clear()
                    break
                sent += len(batch)
        return sent

    def close(self) -> None:
        """Send what is queued and let the thread go, its Redis connection back to the pool."""
        self.closed = True
        self.wake.set()
        self.flush()

    def _forked(self) -> None:
        self.queue.clear()
        self.lock, self.wake, self.sender = threading.Lock(), threading.Event(), None

    def _start(self) -> None:
        """The sending thread: one per process, until `close`."""
        with self.lock:
            pid = os.getpid()
            if self.sender == pid or self.closed:
                return
            try:
                threading.Thread(target=self._send_forever, name="deferred-reads", daemon=True).start()
            except RuntimeError:  # no thread to be had: the reads wait for the next try, or the exit
                log.exception("story reads queued, not sent yet")
                return
            self.sender = pid

    def _send_forever(self) -> None:
        while not self.closed:
            self.wake.wait()
            time.sleep(self.delay)  # what comes meanwhile goes in the same call
            self.wake.clear()  # before sending: a read added from here on wakes the next round
            try:
                self.flush()
            except Exception:  # a thread that died would leave every later read queued for ever
                log.exception("queued story reads not sent")
        self.script.release()
