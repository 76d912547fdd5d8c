"""Console pages of editions: the list, the create form, one edition with its controls.

The Send button posts to `send`, which calls delivery.start_send: the same function as
`newsletter edition send` and `POST /api/v1/editions/<id>/send`. The edition page shows
the progress and updates it while a send runs: assets/console.js polls `progress`
(JSON) every two seconds; without scripts the page refreshes itself.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from newsletter import db, delivery, editions, suppression
from newsletter.models import Edition
from newsletter.web.console import console_required
from newsletter.web.editions_api import EditionRequest, RequestError, create_edition, parse_day

bp = Blueprint("console_editions", __name__, url_prefix="/operator/editions")
LISTED = 50


@bp.get("")
@console_required
def index():
    return _index_page()


@bp.post("")
@console_required
def create():
    session = db.session()
    try:
        wanted = EditionRequest(parse_day(request.form.get("date", "").strip()),
                                request.form.get("articles", "").split() or None,
                                request.form.get("latest") == "1")
        edition = create_edition(session, wanted)
    except RequestError as e:
        return _index_page(error=e.message), 422
    session.commit()
    flash(f"Edition {edition.id} created.")
    return redirect(url_for(".show", edition_id=edition.id), 303)


def _index_page(error: str | None = None) -> str:
    session = db.session()
    listed = session.scalars(select(Edition).order_by(Edition.id.desc()).limit(LISTED)).all()
    return render_template("operator/editions.html", error=error, form=request.form,
                           editions=[(e, delivery.progress(session, e.id)) for e in listed])


@bp.get("/<int:edition_id>")
@console_required
def show(edition_id: int):
    session = db.session()
    edition = _edition(edition_id)
    return render_template("operator/edition.html", edition=edition,
                           stories=editions.edition_articles(session, edition),
                           progress=delivery.progress(session, edition_id),
                           confirmed=suppression.counts(session)["confirmed"])


@bp.get("/<int:edition_id>/progress")
@console_required
def progress(edition_id: int):
    _edition(edition_id)
    return jsonify(delivery.progress(db.session(), edition_id))


@bp.post("/<int:edition_id>/send")
@console_required
def send(edition_id: int):
    return _act(edition_id, "send")


@bp.post("/<int:edition_id>/pause")
@console_required
def pause(edition_id: int):
    return _act(edition_id, "pause")


@bp.post("/<int:edition_id>/resume")
@console_required
def resume(edition_id: int):
    return _act(edition_id, "resume")


@bp.post("/<int:edition_id>/cancel")
@console_required
def cancel(edition_id: int):
    return _act(edition_id, "cancel")


@bp.post("/<int:edition_id>/resend-failed")
@console_required
def resend_failed(edition_id: int):
    return _act(edition_id, "resend-failed")


DONE = {"send": "Sending started.", "pause": "Paused.", "resume": "Sending again.", "cancel": "Cancelled."}


def _act(edition_id: int, action: str):
    """Run one send control, say what came of it, and go back to the edition's page."""
    session = db.session()
    try:
        done = delivery.control(session, edition_id, action, delivery.SendSettings.from_config(current_app.config))
    except editions.EditionNotFound:
        abort(404)
    session.commit()
    flash(_said(done))
    return redirect(url_for(".show", edition_id=edition_id), 303)


def _said(done: delivery.Controlled) -> str:
    if done.action == "resend-failed":
        return f"{done.result} failed deliveries queued again." if done.result else "No failed deliveries to send again."
    return DONE[done.action] if done.result else f"Nothing changed: the edition is {done.before}."


def _edition(edition_id: int) -> Edition:
    try:
        return editions.get(db.session(), edition_id)
    except editions.EditionNotFound:
        abort(404)
