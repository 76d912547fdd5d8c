"""The app bench/prompt.py serves: the service's own, plus one route of the benchmark's.

GET /bench/one-round-trip makes the Redis round trip a counted reader's decision makes
(EVALSHA through newsletter.redis_script, on the thread's connection, with as many
arguments of the same sizes) of a script that does nothing, and answers "ok" as /healthz
does. Its rate against /healthz is the most that any route making one Redis round trip
reaches on the machine: the floor under the decision route, measured in the same run.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Flask, Response

from newsletter import create_app, prompt_history, prompts
from newsletter.prompt_rules import load_rules, rules_path
from newsletter.redis_script import ThreadScript
from newsletter.web.prompt_reader import redis_client

NOTHING = "return {-1, 0}"
READER, STORY = "0" * 32, "story-17"


def make_app() -> Flask:
    app = create_app()
    script = ThreadScript(redis_client(app), NOTHING)
    args, plan = ("1764979200.000000", STORY, READER), decision_plan(app)

    @app.get("/bench/one-round-trip")
    def one_round_trip() -> Response:
        script(keys=(), args=args, tail=plan)
        return Response("ok", mimetype="text/plain")

    return app


def decision_plan(app: Flask):
    """The arguments a decision sends after its first three, for a counted reader on a story
    under the app's rules, made as the decision makes them."""
    rules = load_rules(rules_path(app.config))
    now = datetime.now(timezone.utc)
    choices = prompts.candidates(rules, prompts.ReaderContext(id=READER), prompts.Story(slug=STORY), now)
    return prompt_history.plan(rules, choices)
