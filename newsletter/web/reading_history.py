"""/reading-history: what the prompt slot counts about this browser, and the switch to stop it."""
from __future__ import annotations

import redis
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from newsletter import prompt_history
from newsletter.models import utcnow
from newsletter.web import prompt_reader

bp = Blueprint("reading_history", __name__, url_prefix="/reading-history")
WINDOW_DAYS = 30


@bp.get("")
def page():
    reader_id = prompt_reader.known_reader_id()
    store = prompt_reader.redis_client(current_app)
    counted = prompt_reader.may_count() and store is not None
    opted_out = bool(request.cookies.get(prompt_reader.OPTOUT_COOKIE))
    return render_template("reading_history.html", counted=counted, window=WINDOW_DAYS, opted_out=opted_out,
                           read=stories_read(store, reader_id) if counted else 0,
                           # opted out, yet the id stays: forgetting failed (prompt_reader.stop_counting)
                           unforgotten=opted_out and reader_id is not None and store is not None,
                           consent_required=current_app.config["PROMPT_REQUIRE_CONSENT"])


def stories_read(store, reader_id: str | None) -> int | None:
    """The count the page shows; None when Redis does not give it."""
    if reader_id is None:
        return 0
    try:
        return prompt_history.stories_read(store, reader_id, utcnow(), WINDOW_DAYS)
    except redis.RedisError as error:
        current_app.logger.warning("reading history count not shown: Redis did not answer or refused (%s)", error)
        return None


@bp.post("")
def change():
    """`action=stop`: forget this browser's history and count it no more; `action=count`: count again."""
    action = request.form.get("action")
    if action not in ("stop", "count"):
        abort(400, description="Choose to stop or to start counting.")
    response = redirect(url_for(".page"), 303)
    if action == "stop":
        return prompt_reader.stop_counting(response)
    return prompt_reader.start_counting(response)
