"""/dev/mail: the mail the built-in catcher kept, while it is in use (404 otherwise).

The catcher is in use when NEWSLETTER_SMTP_URL is unset, or when `newsletter dev` set it to
the catcher's own SMTP server and said so with NEWSLETTER_MAIL_CATCHER=1 (mail.catcher_in_use).
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template

from newsletter import mail, mailcatcher

bp = Blueprint("devmail", __name__, url_prefix="/dev/mail")

# A mail's HTML is shown as a mail client would: its own inline styles and images load,
# nothing runs, and `sandbox` gives it an origin of its own (links may open new tabs).
HTML_PART_POLICY = "; ".join([
    "default-src 'none'",
    "style-src 'unsafe-inline' http: https:",
    "img-src data: http: https:",
    "font-src data: http: https:",
    "sandbox allow-popups allow-popups-to-escape-sandbox",
    "frame-ancestors 'self'",
])


@bp.before_request
def _only_with_the_catcher() -> None:
    if not mail.catcher_in_use(current_app.config):
        abort(404)


def _folder() -> str:
    return current_app.config["MAIL_CATCHER_DIR"]


@bp.get("")
def index() -> str:
    messages = mailcatcher.list_messages(_folder())
    return render_template("dev/mail_list.html", messages=messages, folder=_folder())


@bp.get("/<message_id>")
def show(message_id: str) -> str:
    return render_template("dev/mail_message.html", message=_read(message_id))


@bp.get("/<message_id>/html")
def html_part(message_id: str) -> Response:
    """The HTML part alone, for the message page's iframe: no scripts, no forms, no plugins."""
    message = _read(message_id)
    if message.html is None:
        abort(404)
    return Response(message.html, mimetype="text/html", headers={
        "Content-Security-Policy": HTML_PART_POLICY,
        "X-Frame-Options": "SAMEORIGIN",
        "X-Content-Type-Options": "nosniff",
    })


@bp.get("/<message_id>/raw")
def raw(message_id: str) -> Response:
    """The stored source, as plain text."""
    try:
        data = mailcatcher.raw_message(_folder(), message_id)
    except mailcatcher.MessageNotFound:
        abort(404)
    return Response(data, mimetype="text/plain", headers={
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "X-Content-Type-Options": "nosniff",
    })


def _read(message_id: str) -> mailcatcher.CaughtMessage:
    try:
        return mailcatcher.read_message(_folder(), message_id)
    except mailcatcher.MessageNotFound:
        abort(404)
