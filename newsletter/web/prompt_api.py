"""The prompt slot's JSON: GET /api/v1/prompt, POST /api/v1/prompt/events; for operators, the
report and the rules (GET and PUT /api/v1/prompts/rules, the console editor's saves)."""
from __future__ import annotations

import redis
from flask import Blueprint, abort, current_app, g, jsonify, request

from newsletter import articles, db, prompt_history, prompt_report, prompts
from newsletter import prompt_rules_edit as edit
from newsletter.prompt_rules import InvalidRules
from newsletter.crawlers import is_bot
from newsletter.models import utcnow
from newsletter.web import claim_cookie, prompt_reader, requestinfo
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
    return prompt_reader.remember(response, slot)


@bp.post("/prompt/events")
def prompt_events():
    """A seen, click or dismiss from the reader of this request: 204."""
    if not request.is_json:  # a form on another site can post text/plain with the reader's cookies, never JSON
        abort(415, description="Send the event as JSON (Content-Type: application/json).")
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
        counted = prompt_history.record_reader_event(store, reader_id, event, target, variant)
        if counted and event == "dismiss" and reader_id is not None:
            prompt_history.snooze(store, reader_id, target.id, utcnow(), target.snooze_days, rules.history_days)
    except redis.RedisError as error:  # a lost event is a lost count, not an error for the reader
        current_app.logger.warning("prompt event not counted: Redis did not answer or refused (%s)", error)
    response = current_app.response_class(status=204)
    # A claim may say this prompt shows on the next page views: after a dismissal, Redis decides.
    return claim_cookie.drop(response) if event == "dismiss" else response


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
    except redis.RedisError as error:
        abort(503, description=f"Redis did not answer or refused ({error}): the counters cannot be read now.")
    return jsonify(prompt_report.as_json(rules, rows, prompt_report.other_conversions(session, rules)))


@bp.get("/prompts/rules")
@operator_required
def rules():
    """The rules in force; the ETag (a fingerprint of the file) is what a PUT names in If-Match."""
    try:
        latest = edit.current(current_app.config)
    except OSError as error:
        abort(500, description=f"The rules file cannot be read: {error}")
    return _rules_answer(latest)


@bp.put("/prompts/rules")
@operator_required
def save_rules():
    """The body (the rules document) saved as the new version, if If-Match names the rules in force."""
    based_on = _if_match()
    text = _body_text()
    try:
        edit.save(current_app.config, text, based_on, f"api:{g.operator.email}", utcnow())
    except InvalidRules as error:
        return _error(422, "invalid", str(error))
    except edit.StaleRules as error:
        return _error(412, "stale", f"{error}: GET the rules again and apply the change to them.")
    except OSError as error:
        return _error(500, "unwritable", f"The rules file cannot be written: {error}")
    return _rules_answer(edit.current(current_app.config))


def _if_match() -> str:
    """The fingerprint If-Match names (`*`: the rules in force, if there are any); 428 without
    it, 412 when no strong tag of it is the rules in force."""
    if not request.headers.get("If-Match"):
        abort(428, description="Send If-Match with the ETag GET /api/v1/prompts/rules gave.")
    latest = edit.current(current_app.config)
    if request.if_match.star_tag:
        if latest.version is None:
            abort(_error(412, "stale", "If-Match: * but the rules in force cannot be read; name their ETag."))
        return latest.fingerprint
    if request.if_match.contains(latest.fingerprint):  # strong comparison: W/ tags never match
        return latest.fingerprint
    abort(_error(412, "stale", "If-Match names no version in force: GET the rules again."))


def _body_text() -> str:
    data = request.stream.read(edit.MAX_BYTES + 1)
    if len(data) > edit.MAX_BYTES:
        abort(_error(413, "too_large", f"The rules are larger than {edit.MAX_BYTES // 1024} kB."))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        abort(_error(422, "invalid", f"The body is not UTF-8 text (byte {error.start})."))


def _rules_answer(latest: edit.Current):
    response = jsonify(version=latest.version, saved_at=latest.saved_at, saved_by=latest.saved_by,
                       enabled=latest.enabled, rules=edit.document(latest.text) if latest.version else None)
    response.set_etag(latest.fingerprint)
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(status: int, code: str, message: str):
    response = jsonify(error={"code": code, "field": "rules", "message": message})
    response.status_code = status
    return response
