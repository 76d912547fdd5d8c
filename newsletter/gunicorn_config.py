"""gunicorn's settings for the web process: what `gunicorn 'newsletter:create_app()'` gets
when run from the repository root (its gunicorn.conf.py takes them from here), and what
`newsletter dev` runs with (`--config python:newsletter.gunicorn_config`).

gunicorn's own defaults are one `sync` worker: one request at a time, a new connection for
every request. Every page view fetches the prompt slot's JSON and waits on Redis, a sign-up
waits on the database, a checkout on Stripe's API; so threads, which leave the CPU to other
requests while one waits, and kept-alive connections. This is what the benchmarks in
docs/performance.md measure. The command line and GUNICORN_CMD_ARGS override any of it.
"""
from __future__ import annotations

import os

worker_class = "gthread"
threads = 4  # more only add GIL hand-overs on a small machine (docs/performance.md)
# WEB_CONCURRENCY, as hosting platforms set it per machine size; else two, not one per CPU:
# a container sees its host's CPUs, and each worker holds the whole app in memory.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
# Longer than a load balancer keeps an idle connection (60 s on AWS's), so that it closes
# idle connections, not gunicorn: else a request can meet a connection gunicorn is closing.
keepalive = 75
