"""The prompt decision route's throughput and p99 against a bare route of the same app, in one run.

    python bench/prompt.py [--seconds 10] [--clients 8] [--workers 2] [--threads 4]
                           [--readers 2000] [--views 14] [--stories 50] [--rounds 1]

Starts a Redis server of its own (redis-server on a free port, no persistence) and the
app under gunicorn (gthread), on a temporary instance folder, seeds --stories articles,
then drives (a) GET /healthz, (c) one Redis round trip and nothing else
(bench/prompt_floor.py) and (b) GET /api/v1/prompt?article=<slug> with wrk, each at
--clients keep-alive connections. The requests of (b) are a site's page views (Stream):
--readers readers on the site at once, each reading --views stories on average before
another takes the place, each view naming a random story, each reader's cookies kept as a
browser keeps them (its `rid`, and the claim its last answer set); so readers
below the metering threshold, readers shown the sign-up or the appeal, and readers capped
come in the same shares all run long, as on a site (the stream is run until steady first).
(a) and (c) send the same headers. Prints requests/s, p50/p99 latency, errors, the server's
CPU time per request (gunicorn's workers, and Redis), the decision's round trips per request,
the ratio (b)/(a), the floor (c)/(a) (a route making one Redis round trip and nothing else),
and what the decisions were.
The issue's goals: ratio >= 0.7, p99 (b) <= 20 ms, no errors; exit status 1 when one is missed,
2 when a route's rounds disagree by more than 25 % (the machine was busy: run again).

Database: NEWSLETTER_DATABASE_URL (a PostgreSQL URL names a *server*: the run creates a
scratch database there and drops it), or a temporary SQLite file. Needs `wrk` and
`redis-server` on PATH (Debian: apt-get install wrk redis-server). See docs/performance.md.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import load  # noqa: E402  (bench/load.py, beside this file)
from newsletter.mailcatcher import free_port  # noqa: E402
from signup import _cpu_model, scratch_database, wait_healthy  # noqa: E402  (bench/signup.py)

GOAL_RATIO, GOAL_P99_MS = 0.7, 20.0
UNSTEADY = 1.25  # a route's fastest round over its slowest, past which a run is not trusted
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"

# Each request: the next reader of this thread's share of the page-view stream (a file, one
# reader id per line; a reader is always the same thread's) and, for (b), a random story, with
# the reader's cookies as a browser keeps them: its `rid`, and the claim (prompt_claim)
# its last answer set, kept in a jar file across phases. One connection per thread, so each
# answer is the last request's.
WRK_SCRIPT = r"""
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
local function mine(rid, every)
  return tonumber(rid:sub(1, 6), 16) % every == id
end
function init(args)
  unexpected = 0
  prompt, floor, stories = args[1] == "prompt", args[1] == "floor", tonumber(args[3])
  local every = tonumber(args[4])
  readers, next_reader, jar = {}, 1, {}
  for line in io.lines(args[2]) do
    if mine(line, every) then readers[#readers + 1] = line end
  end
  local kept = io.open(JAR, "r")
  if kept then
    for line in kept:lines() do
      local rid, value = line:match("^(%x+) (.*)$")
      if rid and mine(rid, every) then jar[rid] = value end
    end
    kept:close()
  end
  math.randomseed(os.time() + id * 7919)
end
function request()
  last = readers[next_reader]
  next_reader = next_reader % #readers + 1
  local cookie = "rid=" .. last
  if jar[last] and jar[last] ~= "" then cookie = cookie .. "; prompt_claim=" .. jar[last] end
  local headers = {["User-Agent"] = UA, ["Cookie"] = cookie}
  local path = "/healthz"
  if prompt then path = "/api/v1/prompt?article=story-" .. math.random(1, stories) end
  if floor then path = "/bench/one-round-trip" end
  return wrk.format("GET", path, headers, nil)
end
function response(status, headers, body)
  if status ~= 200 then unexpected = unexpected + 1 end
  local set = headers["Set-Cookie"]
  local value = set and set:match("prompt_claim=([^;]*)")
  if value then jar[last] = value end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("unexpected") end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "socket_errors": %d, "unexpected": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, bad,
    latency:percentile(50), latency:percentile(99)))
  local kept = io.open(JAR, "w")
  for _, t in ipairs(threads) do
    for rid, value in pairs(t:get("jar")) do kept:write(rid, " ", value, "\n") end
  end
  kept:close()
end
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not on PATH (Debian: apt-get install {tool})")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nlbench-prompt-")))
        database = stack.enter_context(scratch_database(os.environ.get("NEWSLETTER_DATABASE_URL"), tmp))
        redis, redis_pid = stack.enter_context(redis_server())
        seed(database, tmp / "instance", args.stories)
        port, master = stack.enter_context(gunicorn(args, database, redis, tmp))
        print_setup(args, database)
        server = Server(workers=children(master), redis=redis_pid, redis_url=redis)
        rounds = measure(args, port, server, tmp)
        decisions = decision_counts(redis)
    return report(rounds, decisions)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10, help="length of each measured phase")
    p.add_argument("--clients", type=int, default=8,
                   help="concurrent keep-alive connections (8: the server's own concurrency)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (gthread)")
    p.add_argument("--readers", type=int, default=2000, help="readers on the site at once")
    p.add_argument("--views", type=float, default=14,
                   help="stories a reader reads on average before leaving (another reader arrives)")
    p.add_argument("--stories", type=int, default=50, help="stories the requests name")
    p.add_argument("--rounds", type=int, default=1, help="measure (a) then (b) this many times; medians")
    p.add_argument("--rules", help="a prompt rules file (default: the shipped newsletter/prompt_rules.json)")
    p.add_argument("--warmup", type=float, default=2,
                   help="unmeasured seconds per route first; (b) also runs until the stream is steady")
    return p.parse_args(argv)


# ---------------------------------------------------------------- the stack

@contextlib.contextmanager
def redis_server():
    """A Redis server of the run's own on a free loopback port, nothing saved to disk."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for_redis(url, proc)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def wait_for_redis(url: str, proc: subprocess.Popen, timeout: float = 10) -> None:
    from redis.exceptions import ConnectionError as RedisDown

    from newsletter.redis_url import client

    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        c = client(url)
        with contextlib.suppress(RedisDown):
            c.ping()
            c.close()
            return
        c.close()
        time.sleep(0.1)
    sys.exit("redis-server did not start")


def seed(database: str, instance: Path, stories: int) -> None:
    """Migrate and add `stories` articles, story-1 … story-N."""
    from newsletter import create_app, db
    from newsletter.models import Article

    app = create_app({"DATABASE_URL": database, "INSTANCE_PATH": str(instance)})
    db.upgrade(app)
    with app.app_context():
        session = db.session()
        now = datetime.datetime.now(datetime.timezone.utc)
        for n in range(1, stories + 1):
            session.add(Article(source_key=f"bench:{n}", slug=f"story-{n}", headline=f"Story {n}",
                                section="News", body=[{"type": "paragraph", "text": "A paragraph."}],
                                published_at=now))
        session.commit()
    db.engine(app).dispose()


@contextlib.contextmanager
def gunicorn(args, database: str, redis: str, tmp: Path):
    """The app (with bench/prompt_floor.py's route) under gunicorn (gthread: keep-alive
    connections), answering on the yielded port."""
    port = free_port()
    log = tmp / "gunicorn.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")} | {
        "NEWSLETTER_DATABASE_URL": database, "NEWSLETTER_REDIS_URL": redis,
        "NEWSLETTER_INSTANCE_PATH": str(tmp / "instance")}
    if args.rules:
        env["NEWSLETTER_PROMPT_RULES"] = str(Path(args.rules).resolve())
    cmd = [sys.executable, "-m", "gunicorn", "prompt_floor:make_app()", "--chdir", str(ROOT),
           "--pythonpath", str(ROOT / "bench"),
           "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers), "--worker-class", "gthread",
           "--threads", str(args.threads), "--keep-alive", "75", "--backlog", "1024",
           "--error-logfile", str(log)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port, proc, log)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def run_wrk(port: int, route: str, args, seconds: float, stream: "Stream") -> load.Result:
    threads = args.clients
    with tempfile.TemporaryDirectory() as tmp:
        script, readers = Path(tmp) / "prompt.lua", Path(tmp) / "readers.txt"
        script.write_text(f'UA = "{DESKTOP}"\nJAR = "{stream.jar}"\n' + WRK_SCRIPT)
        readers.write_text("\n".join(stream.ahead(int(seconds * MOST_PER_SECOND))) + "\n")
        cmd = ["wrk", "-t", str(threads), "-c", str(args.clients), "-d", f"{seconds:g}s", "--timeout", "10s",
               "-s", str(script), f"http://127.0.0.1:{port}/", "--", route, str(readers), str(args.stories),
               str(threads)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        out = done.stdout
    data = json.loads(next(x for x in out.splitlines() if x.startswith("WRK_JSON ")).removeprefix("WRK_JSON "))
    if route == "prompt":
        stream.advance(data["requests"])
    return load.Result(requests=data["requests"], errors=data["socket_errors"] + data["unexpected"],
                       seconds=data["duration_us"] / 1e6, p50_ms=data["p50_us"] / 1000,
                       p99_ms=data["p99_us"] / 1000, client=f"wrk, {threads} threads")


MOST_PER_SECOND = 15_000  # page views a phase may take from the stream per second (wraps past it)


class Stream:
    """The site's page views, reader by reader: `readers` readers are on the site at once; each
    view is by one of them at random, who then leaves with probability 1/`views` (a new reader
    takes the place). So readers read `views` stories on average, some one, some dozens, and
    the shares of views at each stage of a reader's month (the first story, still metered,
    shown the appeal, capped) stay the same all run long, once the stream is steady. (b)'s
    phases go on along the stream, each where the last stopped; (a) and (c) only send it."""

    def __init__(self, readers: int, views: float, jar: Path, seed: int = 2026) -> None:
        self.jar = jar  # the readers' cookies, as wrk keeps them between phases
        self.random = random.Random(seed)
        self.slots = [self._new() for _ in range(readers)]
        self.leave = 1 / max(views, 1)
        self.made: list[str] = []
        self.used = 0

    def _new(self) -> str:
        return f"{self.random.getrandbits(128):032x}"

    def ahead(self, count: int) -> list[str]:
        """The next `count` views' readers, from where (b) stopped."""
        while len(self.made) < self.used + count:
            i = self.random.randrange(len(self.slots))
            self.made.append(self.slots[i])
            if self.random.random() < self.leave:
                self.slots[i] = self._new()
        return self.made[self.used:self.used + count]

    def advance(self, views: int) -> None:
        self.used += views


@dataclass
class Server:
    """The processes whose CPU time a phase costs: gunicorn's workers and Redis (at `redis_url`)."""

    workers: list[int]
    redis: int
    redis_url: str

    def cpu(self) -> tuple[float, float]:
        return sum(cpu_seconds(pid) for pid in self.workers), cpu_seconds(self.redis)

    def script_calls(self) -> int:
        """Script calls Redis has served so far (INFO commandstats): a decision's round trip is one."""
        from newsletter.redis_url import client

        c = client(self.redis_url)
        try:
            return int(c.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
        finally:
            c.close()


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(port: int, route: str, args, server: Server, stream: Stream) -> load.Result:
    """One phase, with the server's CPU time per answered request (ms) on the result."""
    before, calls_before = server.cpu(), server.script_calls()
    result = run_wrk(port, route, args, args.seconds, stream)
    after, calls_after = server.cpu(), server.script_calls()
    answered = max(result.requests, 1)
    result.app_cpu_ms = (after[0] - before[0]) / answered * 1000
    result.redis_cpu_ms = (after[1] - before[1]) / answered * 1000
    result.round_trips = (calls_after - calls_before) / answered
    return result


def measure(args, port: int, server: Server, tmp: Path) -> list[list[load.Result]]:
    stream = Stream(args.readers, args.views, tmp / "cookie-jar.txt")
    if args.warmup:
        for route in PHASES:
            run_wrk(port, route, args, args.warmup, stream)
        # Readers turned over twice: the shares of the stages are what they stay (within e^-2).
        while stream.used < 2 * args.readers * args.views:
            run_wrk(port, "prompt", args, args.warmup, stream)
    return [[measured(port, route, args, server, stream) for route in PHASES] for _ in range(args.rounds)]


def decision_counts(redis: str) -> dict[str, int]:
    """Impressions per variant or prompt, and the decisions that showed nothing."""
    from newsletter.redis_url import client

    c = client(redis)
    try:
        counts = {key.decode().removeprefix("prompt:stats:"): int(c.hget(key, "impressions") or 0)
                  for key in c.scan_iter("prompt:stats:*")}
    finally:
        c.close()
    return {k: v for k, v in sorted(counts.items()) if v}


# ---------------------------------------------------------------- output

PHASES = ("bare", "floor", "prompt")  # each round measures them in this order
ROUTES = ("(a) GET /healthz", "(c) one Redis round trip", "(b) GET /api/v1/prompt")


def print_setup(args, database: str) -> None:
    print(f"date:      {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine:   {os.cpu_count()} CPUs ({_cpu_model()}), {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}")
    print(f"server:    gunicorn, {args.workers} workers x {args.threads} threads (gthread, keep-alive)")
    print(f"database:  {'SQLite (temporary file)' if database.startswith('sqlite') else 'PostgreSQL (scratch)'}; "
          "Redis: a redis-server of the run's own (no persistence)")
    print(f"load:      wrk, {args.clients} connections, {args.seconds:g} s per phase, {args.rounds} round(s) after "
          f"{args.warmup:g} s warm-up per route; {args.readers} readers at once reading {args.views:g} stories "
          f"each on average, {args.stories} stories, "
          f"rules {args.rules or 'shipped'}")
    print()


def report(rounds: list[list[load.Result]], decisions: dict[str, int]) -> int:
    print(f"{'':30} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
          f"{'app CPU ms/req':>15} {'Redis CPU ms/req':>17} {'round trips/req':>16}")
    for i, phases in enumerate(rounds, 1):
        label = f" round {i}" if len(rounds) > 1 else ""
        for name, r in zip(ROUTES, phases):
            print(f"{name + label:30} {r.requests:9d} {r.rate:9.0f} {r.p50_ms:8.1f} {r.p99_ms:8.1f} {r.errors:7d} "
                  f"{r.app_cpu_ms:15.3f} {r.redis_cpu_ms:17.3f} {r.round_trips:16.2f}")
    bare, floor, prompt = (median([phases[i] for phases in rounds]) for i in range(len(PHASES)))
    cpu_ratio = bare.app_cpu_ms / prompt.app_cpu_ms if prompt.app_cpu_ms else 0.0
    print("shown:     " + ", ".join(f"{k} {v}" for k, v in decisions.items()) + " (warm-up included)")
    print(f"server CPU per request, medians: (a) {bare.app_cpu_ms:.3f} ms, (b) {prompt.app_cpu_ms:.3f} ms "
          f"+ {prompt.redis_cpu_ms:.3f} ms in Redis; (a)/(b) app CPU {cpu_ratio:.2f} (what the ratio would be "
          "if the app alone had the CPUs)")
    print(f"round trips: (b) made {prompt.round_trips:.2f} script calls to Redis per request (medians); the "
          f"others were answered from the reader's claim (newsletter/prompt_claims.py), their reads "
          "and impressions sent a moment later in batches")
    # Each round's (b) over its own (a), measured a minute apart, then the median: a neighbour
    # that slows one phase moves one round's ratio, not the verdict (medians of each route
    # apart could pair a fast (a) with a slow (b) and the other way round).
    ratios = [phases[2].rate / phases[0].rate if phases[0].rate else 0.0 for phases in rounds]
    ratio = statistics.median(ratios)
    print("ratios:    (b)/(a) per round " + ", ".join(f"{r:.2f}" for r in ratios) + f"; their median {ratio:.2f}; "
          f"the routes' medians' {prompt.rate / bare.rate if bare.rate else 0.0:.2f}")
    print(f"floor:     (c)/(a) {floor.rate / bare.rate if bare.rate else 0.0:.2f}: a route making one Redis "
          f"round trip and nothing else; the decision made {ratio / (floor.rate / bare.rate or 1):.0%} "
          "of it, (b)/(c)" if floor.rate else "floor:     (c) answered nothing")
    print()
    errors = bare.errors + floor.errors + prompt.errors
    checks = [(f"ratio (b)/(a) {ratio:.2f}", f">= {GOAL_RATIO}", ratio >= GOAL_RATIO),
              (f"p99 (b) {prompt.p99_ms:.1f} ms", f"<= {GOAL_P99_MS:g} ms", prompt.p99_ms <= GOAL_P99_MS),
              (f"errors {errors}", "= 0", errors == 0)]
    for got, goal, ok in checks:
        print(f"{got:28} goal {goal:10} {'met' if ok else 'MISSED'}")
    if not steady(rounds):
        return 2
    return 0 if all(ok for *_, ok in checks) else 1


def steady(rounds: list[list[load.Result]]) -> bool:
    """Whether each route ran alike in every round; when not, something else had the CPUs
    for a while (a neighbour on the host) and the run's ratio is not to be trusted."""
    for i, name in enumerate(ROUTES):
        rates = [phases[i].rate for phases in rounds]
        if len(rates) > 1 and max(rates) > UNSTEADY * min(rates):
            print(f"UNRELIABLE: {name} ran at {min(rates):,.0f} to {max(rates):,.0f} req/s across rounds "
                  f"(more than {UNSTEADY:g}x apart): the machine was busy with something else; run again")
            return False
    return True


def median(results: list[load.Result]) -> load.Result:
    summary = load.Result(requests=round(statistics.median(r.rate for r in results)),
                          errors=sum(r.errors for r in results), seconds=1.0,
                          p50_ms=statistics.median(r.p50_ms for r in results),
                          p99_ms=statistics.median(r.p99_ms for r in results), client=results[0].client)
    summary.app_cpu_ms = statistics.median(r.app_cpu_ms for r in results)
    summary.redis_cpu_ms = statistics.median(r.redis_cpu_ms for r in results)
    summary.round_trips = statistics.median(r.round_trips for r in results)
    return summary


if __name__ == "__main__":
    sys.exit(main())
