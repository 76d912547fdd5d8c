"""/operator/mail: the mail the built-in catcher kept, in the operator console.

The catcher is in use when NEWSLETTER_SMTP_URL is unset, or when `newsletter dev` set it
to the catcher's own SMTP server and said so with NEWSLETTER_MAIL_CATCHER=1
(mail.catcher_in_use); otherwise these pages are 404. Caught mail holds confirmation
links and addresses, so the pages need a signed-in operator, like the rest of the
console. One exception keeps `newsletter dev` simple: with MAIL_CATCHER set (only
`newsletter dev` sets it), a request from this machine's loopback needs no sign-in.

The old address, /dev/mail, redirects here.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, url_for

from newsletter import mail, mailcatcher
from newsletter.web.console import sign_in_first, signed_in_operator

bp = Blueprint("devmail", __name__, url_prefix="/operator/mail")
moved_bp = Blueprint("devmail_moved", __name__, url_prefix="/dev/mail")

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
def _signed_in_and_catching():
    g.operator = signed_in_operator()
    if g.operator is None and not local_dev_request():
        return sign_in_first()
    if not mail.catcher_in_use(current_app.config):
        abort(404)
    return None


def local_dev_request() -> bool:
    """True for a request from this machine to the `newsletter dev` stack."""
    if not current_app.config.get("MAIL_CATCHER"):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _folder() -> str:
    return current_app.config["MAIL_CATCHER_DIR"]


@bp.get("")
def index() -> str:
    messages = mailcatcher.list_messages(_folder())
    return render_template("operator/mail_list.html", messages=messages, folder=_folder())


@bp.get("/<message_id>")
def show(message_id: str) -> str:
    return render_template("operator/mail_message.html", message=_read(message_id))


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


@moved_bp.get("", defaults={"rest": ""})
@moved_bp.get("/<path:rest>")
def moved(rest: str):
    """The pages' old address (`newsletter dev` prints it): on to /operator/mail."""
    if not mail.catcher_in_use(current_app.config):
        abort(404)
    return redirect(url_for("devmail.index") + (f"/{quote(rest)}" if rest else ""), 302)
