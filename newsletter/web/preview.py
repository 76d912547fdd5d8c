"""Edition previews for operators: the real rendered mail, and a test send to one address.

GET /operator/editions/<id>/preview shows the HTML part as a mail client would (in a
sandboxed frame, full width and phone width), the text part and the headers; POST
/operator/editions/<id>/test-send mails it to one address with "[TEST]" in the subject,
outside the deliveries ledger. Both show the sample with links that unsubscribe nobody.

Both need a signed-in operator: the console's own sign-in (web.console.console_required).
"""
from __future__ import annotations

import email
from email import policy
from email.utils import make_msgid, parseaddr

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for

from newsletter import addresses, db, edition_render, editions, mail
from newsletter.web.console import console_required
from newsletter.web.devmail import HTML_PART_POLICY

bp = Blueprint("preview", __name__, url_prefix="/operator/editions")
SAMPLE_ADDRESS, SAMPLE_NAME = "reader@example.org", "Sam Reader"


@bp.get("/<int:edition_id>/preview")
@console_required
def show(edition_id: int):
    audience = _audience()
    message = _sample(edition_id, audience)
    return render_template("operator/edition_preview.html", edition_id=edition_id, audience=audience,
                           audiences=edition_render.AUDIENCES, message=message,
                           text=message.get_body(("plain",)).get_content())


@bp.get("/<int:edition_id>/preview/html")
@console_required
def html_part(edition_id: int) -> Response:
    """The HTML part alone, for the preview's frames: its own styles, no scripts, no forms."""
    message = _sample(edition_id, _audience())
    return Response(message.get_body(("html",)).get_content(), mimetype="text/html", headers={
        "Content-Security-Policy": HTML_PART_POLICY,
        "X-Frame-Options": "SAMEORIGIN",
    })


@bp.post("/<int:edition_id>/test-send")
@console_required
def test_send(edition_id: int):
    audience = _audience()
    try:
        to = addresses.normalise(request.form.get("to", ""))
    except addresses.InvalidEmail as e:
        return _preview_with_error(edition_id, audience, str(e), 400)
    mail_from = parseaddr(current_app.config["MAIL_FROM"])[1]
    data = edition_render.sample_message(
        _prepared(edition_id, audience), to=addresses.for_transport(to), test=True,
        message_id=make_msgid(domain=mail_from.rpartition("@")[2] or "localhost"))
    try:
        with mail.sender() as outbox:
            outbox.send_bytes(mail_from, [addresses.for_transport(to)], data)
    except mail.SendError as e:
        return _preview_with_error(edition_id, audience, f"The test mail was not sent: {e}", 502)
    flash(f"Test mail sent to {to}.")
    return redirect(url_for(".show", edition_id=edition_id, audience=audience), 303)


def _audience() -> str:
    audience = request.values.get("audience", "public")
    if audience not in edition_render.AUDIENCES:
        abort(400, f"Unknown audience {audience!r}.")
    return audience


def _prepared(edition_id: int, audience: str) -> edition_render.PreparedEdition:
    settings = edition_render.settings_from_config(current_app.config)
    try:
        return edition_render.prepare(db.session(), edition_id, audience=audience, **settings)
    except editions.EditionNotFound:
        abort(404)


def _sample(edition_id: int, audience: str) -> email.message.EmailMessage:
    data = edition_render.sample_message(_prepared(edition_id, audience), to=SAMPLE_ADDRESS,
                                         name=SAMPLE_NAME, message_id=make_msgid(domain="preview.invalid"))
    return email.message_from_bytes(data, policy=policy.default)


def _preview_with_error(edition_id: int, audience: str, error: str, status: int):
    message = _sample(edition_id, audience)
    return render_template("operator/edition_preview.html", edition_id=edition_id, audience=audience,
                           audiences=edition_render.AUDIENCES, message=message, error=error,
                           text=message.get_body(("plain",)).get_content()), status
