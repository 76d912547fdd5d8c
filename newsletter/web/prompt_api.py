"""The prompt slot's JSON: GET /api/v1/prompt, POST /api/v1/prompt/events, the operators' report."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request

from newsletter import articles, db, prompt_history, prompt_report, prompts
from newsletter.crawlers import is_bot
from newsletter.models import utcnow
from newsletter.redis_script import REDIS_DOWN
from newsletter.web import prompt_reader, requestinfo
from newsletter.web.auth import operator_required

bp = Blueprint("prompt_api", __name__, url_prefix="/api/v1")
EVENTS = prompt_history.EVENTS
MAX_FIELD = 120


@bp.get("/prompt")
def prompt():
    """What the slot shows the reader of this request, for pages served from a cache."""
    try:
        story = prompt_reader.story_facts(request.args.get("article", ""))
    except articles.ArticleNotFound:
        abort(404, description="No article has this slug.")
    slot = prompt_reader.slot(story)
    response = current_app.response_class(prompt_reader.answer(slot, story.slug), mimetype="application/json")
    response.headers["Cache-Control"] = "private, no-store"
    if slot.new_reader_id:
        prompt_reader.remember_reader(response, slot.reader.id)
    return response


@bp.post("/prompt/events")
def prompt_events():
    """A seen, click or dismiss from the reader of this request: 204."""
    event, kind, variant = event_fields()
    if is_bot(request.headers.get("User-Agent", "")):
        return "", 204
    rules = prompt_reader.rules()
    reader_id = prompt_reader.known_reader_id() if prompt_reader.may_count() else None
    try:
        target = prompts.event_prompt(rules, reader_id, kind, variant)
    except prompts.InvalidEvent as error:
        return jsonify(error={"code": "invalid", "field": "variant", "message": str(error)}), 422
    store = prompt_reader.redis_client(current_app)
    if store is None:
        return "", 204
    try:
        prompt_history.record_event(store, reader_id, event, variant)
        if event == "dismiss" and reader_id is not None:
            prompt_history.snooze(store, reader_id, target.id, utcnow(), target.snooze_days, rules.history_days)
    except REDIS_DOWN as error:  # a lost event is a lost count, not an error for the reader
        current_app.logger.warning("prompt event not counted: Redis did not answer (%s)", error)
    return "", 204


def event_fields() -> tuple[str, str, str]:
    try:
        body = requestinfo.json_body()
    except requestinfo.InvalidJson as error:
        abort(400, description=str(error))
    if not isinstance(body, dict) or body.get("event") not in EVENTS:
        abort(422, description=f"`event` must be one of {', '.join(EVENTS)}.")
    fields = [body.get(name) for name in ("prompt", "variant")]
    if not all(isinstance(f, str) and 0 < len(f) <= MAX_FIELD for f in fields):
        abort(422, description="`prompt` and `variant` must be the strings GET /api/v1/prompt gave.")
    return body["event"], fields[0], fields[1]


@bp.get("/prompts/report")
@operator_required
def report():
    """Per-variant results, as `newsletter prompts report --json`."""
    rules = prompt_reader.rules()
    store = prompt_reader.redis_client(current_app)
    if store is None:
        abort(503, description="No Redis (NEWSLETTER_REDIS_URL): there are no counters to report.")
    session = db.session()
    try:
        rows = prompt_report.report(session, store, rules)
    except REDIS_DOWN as error:
        abort(503, description=f"Redis did not answer ({error}): the counters cannot be read now.")
    return jsonify(prompt_report.as_json(rules, rows, prompt_report.other_conversions(session, rules)))
