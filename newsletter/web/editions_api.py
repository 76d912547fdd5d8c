"""Editions in the operator JSON API, under /api/v1/editions, behind a bearer token (web.auth).

    POST /api/v1/editions                     {"date"?, "articles"?: [slug], "latest"?} → 201 {"id", …}
    GET  /api/v1/editions/<id>                the progress, as `newsletter edition status --json`
    POST /api/v1/editions/<id>/send           202; a second call changes nothing
    POST /api/v1/editions/<id>/pause|resume|cancel      200 {"changed", …progress}
    POST /api/v1/editions/<id>/resend-failed  200 {"resent", …progress}

Sending calls delivery.start_send, as the console's Send button and `newsletter edition
send` do. Errors are `{"error": {"code", "message", "field"?}}`: 404 for an unknown
edition, 422 for a body that cannot make an edition, 409 to send a cancelled one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import Blueprint, abort, current_app, jsonify, request, url_for

from newsletter import db, delivery, editions
from newsletter.models import Edition
from newsletter.web import requestinfo
from newsletter.web.auth import operator_required

bp = Blueprint("editions_api", __name__, url_prefix="/api/v1/editions")


class RequestError(ValueError):
    """An edition request that cannot be carried out; the message is for the operator."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field

    def as_json(self) -> dict:
        body = {"code": self.code, "message": self.message}
        return {"error": body | ({"field": self.field} if self.field else {})}


@dataclass(frozen=True)
class EditionRequest:
    day: date | None = None
    slugs: list[str] | None = None
    latest: bool = False


# ---------------------------------------------------------------- routes

@bp.post("")
@operator_required
def create():
    session = db.session()
    try:
        edition = create_edition(session, edition_request(_json_body()))
    except RequestError as e:
        return jsonify(e.as_json()), 400 if e.code == "invalid_json" else 422
    session.commit()
    body = {"id": edition.id, "date": edition.date.isoformat(), "state": edition.state,
            "subject": edition.subject,
            "articles": [a.slug for a in editions.edition_articles(session, edition)]}
    return jsonify(body), 201, {"Location": url_for(".show", edition_id=edition.id)}


@bp.get("/<int:edition_id>")
@operator_required
def show(edition_id: int):
    return jsonify(_progress(edition_id))


@bp.post("/<int:edition_id>/send")
@operator_required
def send(edition_id: int):
    done = _controlled(edition_id, "send")
    if not done.result and done.before == "cancelled":
        error = RequestError("cancelled", f"Edition {edition_id} was cancelled; create a new one to send.")
        return jsonify(error.as_json()), 409
    return jsonify({"started": done.result} | _progress(edition_id)), 202


@bp.post("/<int:edition_id>/pause")
@operator_required
def pause(edition_id: int):
    return _control(edition_id, "pause")


@bp.post("/<int:edition_id>/resume")
@operator_required
def resume(edition_id: int):
    return _control(edition_id, "resume")


@bp.post("/<int:edition_id>/cancel")
@operator_required
def cancel(edition_id: int):
    return _control(edition_id, "cancel")


@bp.post("/<int:edition_id>/resend-failed")
@operator_required
def resend_failed(edition_id: int):
    return _control(edition_id, "resend-failed", "resent")


def _control(edition_id: int, action: str, key: str = "changed"):
    return jsonify({key: _controlled(edition_id, action).result} | _progress(edition_id))


def _controlled(edition_id: int, action: str) -> delivery.Controlled:
    """Run the send control (the console and the CLI run the same) and commit it."""
    session = db.session()
    try:
        done = delivery.control(session, edition_id, action, delivery.SendSettings.from_config(current_app.config))
    except editions.EditionNotFound:
        abort(404, description=f"No edition has the id {edition_id}.")
    session.commit()
    return done


def _progress(edition_id: int) -> dict:
    try:
        return delivery.progress(db.session(), edition_id)
    except editions.EditionNotFound:
        abort(404, description=f"No edition has the id {edition_id}.")


def _json_body():
    try:
        return requestinfo.json_body()  # read once, at most SIGNUP_MAX_BYTES
    except requestinfo.InvalidJson as e:
        if not request.get_data(cache=True).strip():
            return {}  # no body at all: the defaults, today's stories
        raise RequestError("invalid_json", str(e)) from None


# ---------------------------------------------------------------- shared with the console

def edition_request(body) -> EditionRequest:
    """Check `{"date"?: "YYYY-MM-DD", "articles"?: [slug], "latest"?: bool}`."""
    if not isinstance(body, dict):
        raise RequestError("invalid", 'Send a JSON object: {"date"?, "articles"?: [slug]}.')
    latest = body.get("latest", False)
    if not isinstance(latest, bool):
        raise RequestError("invalid", "latest must be true or false.", "latest")
    return EditionRequest(parse_day(body.get("date")), parse_slugs(body.get("articles")), latest)


def parse_day(value) -> date | None:
    """A YYYY-MM-DD date; None or "" for the default (today in TIMEZONE)."""
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise RequestError("invalid", "date must be a date such as 2026-11-25.", "date") from None


def parse_slugs(value) -> list[str] | None:
    """A list of slugs, in the order wanted; None or [] for the day's stories."""
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise RequestError("invalid", "articles must be a list of article slugs.", "articles")
    return [s.strip() for s in value]


def create_edition(session, request: EditionRequest) -> Edition:
    """A new draft from the request, with the configured story count, zone and name."""
    config = current_app.config
    try:
        return editions.create_edition(
            session, day=request.day, slugs=request.slugs, count=int(config["EDITION_STORIES"]),
            tz=config["TIMEZONE"], publication=config["PUBLICATION_NAME"], or_latest=request.latest)
    except editions.ArticleNotFound as e:
        raise RequestError("unknown_article", f"No article has the slug {e.args[0]!r}.", "articles") from None
    except editions.NoStories as e:
        reason = str(e)
        raise RequestError("no_stories", f"{reason[:1].upper()}{reason[1:]}: name the stories in "
                           'articles, or add "latest": true.', "date") from None
