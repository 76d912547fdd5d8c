"""Closed-loop HTTP load with keep-alive: N clients, each sending its next request as soon
as the previous answer is in. Two generators with the same results:

- `wrk` (Debian's package), when it is on PATH: written in C, so it leaves nearly all of
  a small machine's CPU to the server under test;
- Python threads with http.client, spread over a few processes (the GIL), otherwise.

A request is an error when the connection fails or the status is not the expected one.
"""
from __future__ import annotations

import http.client
import json
import multiprocessing
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Target:
    """What one phase sends: `body` may hold `{n}`, made unique per request."""

    host: str
    port: int
    method: str
    path: str
    expect: int
    body: str | None = None
    content_type: str = "application/json"
    tag: str = "bench"  # unique per phase, so bodies never repeat across phases

    def payload(self, client: str, n: int) -> bytes | None:
        if self.body is None:
            return None
        return self.body.replace("{n}", f"{self.tag}-{client}-{n}").encode()


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    client: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run(target: Target, clients: int, seconds: float, generator: str) -> Result:
    if generator == "wrk":
        return run_wrk(target, clients, seconds)
    return run_python(target, clients, seconds)


# ---------------------------------------------------------------- wrk

WRK_SCRIPT = r"""
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  n, unexpected = 0, 0
  method, expect, ctype = args[1], tonumber(args[2]), args[3]
  body_template = args[4]
end
function request()
  n = n + 1
  if body_template == "" then
    return wrk.format(method, nil, nil, nil)
  end
  local body = body_template:gsub("{n}", TAG .. "-w" .. id .. "-" .. n)
  return wrk.format(method, nil, {["Content-Type"] = ctype}, body)
end
function response(status, headers, body)
  if status ~= expect then unexpected = unexpected + 1 end
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
end
"""


def run_wrk(target: Target, clients: int, seconds: float) -> Result:
    threads = min(clients, 2)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.lua"
        script.write_text(f'TAG = "{target.tag}"\n' + WRK_SCRIPT)
        cmd = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds:g}s",
               "--timeout", "10s", "-s", str(script), f"http://{target.host}:{target.port}{target.path}",
               "--", target.method, str(target.expect), target.content_type, target.body or ""]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    data = json.loads(line.removeprefix("WRK_JSON "))
    return Result(requests=data["requests"], errors=data["socket_errors"] + data["unexpected"],
                  seconds=data["duration_us"] / 1e6, p50_ms=data["p50_us"] / 1000,
                  p99_ms=data["p99_us"] / 1000, client=f"wrk, {threads} threads")


# ---------------------------------------------------------------- Python threads

def run_python(target: Target, clients: int, seconds: float, processes: int = 2) -> Result:
    processes = max(1, min(processes, clients))
    start_at = time.time() + 1.0  # every process is ready before the clock starts
    shares = [(target, clients // processes + (p < clients % processes), start_at, seconds, p)
              for p in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.starmap(_process_share, shares)
    latencies = sorted(x for part in parts for x in part[0])
    # Like wrk: every answered request counts and is timed; errors are counted apart.
    return Result(requests=len(latencies), errors=sum(part[1] for part in parts),
                  seconds=seconds, p50_ms=_percentile(latencies, 50) * 1000,
                  p99_ms=_percentile(latencies, 99) * 1000,
                  client=f"Python http.client, {clients} threads in {processes} processes")


def _process_share(target: Target, threads: int, start_at: float, seconds: float, index: int):
    results: list[tuple[list[float], int]] = []
    workers = [threading.Thread(target=_client, args=(target, f"p{index}t{i}", start_at,
                                                      start_at + seconds, results))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return [x for r in results for x in r[0]], sum(r[1] for r in results)


def _client(target: Target, name: str, start_at: float, end_at: float, results: list) -> None:
    latencies, errors, n = [], 0, 0
    conn = http.client.HTTPConnection(target.host, target.port, timeout=10)
    headers = {"Content-Type": target.content_type} if target.body is not None else {}
    time.sleep(max(0.0, start_at - time.time()))
    while time.time() < end_at:
        n += 1
        began = time.perf_counter()
        try:
            conn.request(target.method, target.path, target.payload(name, n), headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            continue
        latencies.append(time.perf_counter() - began)
        errors += response.status != target.expect
    conn.close()
    results.append((latencies, errors))


def _percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return float("nan")
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]
