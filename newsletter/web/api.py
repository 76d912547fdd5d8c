"""The JSON API under /api/v1."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import ServiceUnavailable

from newsletter import articles, consent, db, limits, subscribers
from newsletter.queue import QueueUnavailable
from newsletter.web import reader, requestinfo
from newsletter.web.forms import SIGNUP_NOT_TAKEN, SIGNUP_RETRY_AFTER, FieldError, JsonSignup, json_signup

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# The answer to every sign-up taken, whatever the address (no enumeration): serialised
# once, as jsonify would, which costs more than the rest of the answer.
SIGNUP_TAKEN = b'{"status":"pending_confirmation"}\n'


@bp.get("/articles/<slug>")
def article(slug: str):
    try:
        story = articles.get(db.session(), slug)
    except articles.ArticleNotFound:
        abort(404, description=f"No article has the slug {slug!r}.")
    if story.access != "members":
        response = jsonify(articles.as_json(story))
        response.headers["Cache-Control"] = f"public, max-age={current_app.config['ARTICLE_MAX_AGE']}"
        return response
    # Members get the whole story, others its lede: no shared cache may keep either for the other.
    response = jsonify(articles.as_json(story) if reader.reads_everything() else articles.members_preview(story))
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/csrf")
def csrf_token():
    """This browser's CSRF token, for the forms of pages every reader shares (assets/csrf.js).

    Other sites' pages cannot read it: no CORS header is sent for this route.
    """
    response = jsonify(csrf_token=generate_csrf())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/signups")
def signup():
    """A sign-up from another site's page: 202 alike for every address (no enumeration).

    The sign-up is queued for a worker; 429 over a rate limit, 503 when the queue cannot
    take it, both with Retry-After.
    """
    if not request.is_json:
        abort(415, description="Send the sign-up as JSON (Content-Type: application/json).")
    try:
        data = signup_request()
    except FieldError as error:
        body = {"code": "invalid", "field": error.field, "message": error.message}
        return jsonify(error=body), 422
    ctx = requestinfo.consent_context("api", data.page, data.article)
    task = subscribers.signup_task(data.address, ctx, consent.configured_text(current_app.config))
    try:
        limits.queue_signup(data.address, *task)
    except QueueUnavailable as error:
        raise ServiceUnavailable(SIGNUP_NOT_TAKEN, retry_after=SIGNUP_RETRY_AFTER) from error
    return current_app.response_class(SIGNUP_TAKEN, 202, mimetype="application/json")


def signup_request() -> JsonSignup:
    try:
        return json_signup(requestinfo.json_body())
    except requestinfo.InvalidJson as error:
        raise FieldError(None, str(error)) from error
