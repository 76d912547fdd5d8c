"""The app bench/prompt.py serves: the service's own, plus one route of the benchmark's.

GET /bench/one-round-trip makes the Redis round trip a counted reader's decision makes
(EVALSHA through newsletter.redis_script, on the thread's connection, with as many
arguments of the same sizes) of a script that does nothing, and answers "ok" as /healthz
does. Its rate against /healthz is the most that any route making one Redis round trip
reaches on the machine: the floor under the decision route, measured in the same run.
"""
from __future__ import annotations

from flask import Flask, Response

from newsletter import create_app
from newsletter.redis_script import ThreadScript, packed
from newsletter.web.prompt_reader import redis_client

NOTHING = "return {-1, 0}"
# The decision's arguments, as many and as long as the shipped rules make them: the time,
# the story, the reader, then the plan (newsletter.prompt_history._plan) for two candidates.
ARGS = ("1764979200.000000", "story-17", "0" * 32)
PLAN = packed([2592000, 200, 100, 20,
               "appeal-2026-11", "appeal-2026-11:community", 3, 2592000, 4, 2592000, 86400.0, 1,
               "daily-edition", "daily-edition", 0, 2592000, 3, 604800, 86400.0, 1])


def make_app() -> Flask:
    app = create_app()
    script = ThreadScript(redis_client(app), NOTHING)

    @app.get("/bench/one-round-trip")
    def one_round_trip() -> Response:
        script(keys=(), args=ARGS, tail=PLAN)
        return Response("ok", mimetype="text/plain")

    return app
