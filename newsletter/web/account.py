"""A member's account: sign-in by a link in a mail, the membership, the Customer Portal."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Flask, current_app, redirect, render_template, request, url_for

from newsletter import db, member_signin, memberships
from newsletter.models import Reader
from newsletter.web import member_session

bp = Blueprint("account", __name__, url_prefix="/account")

TOO_MANY = "Too many sign-in requests from here; wait a minute and try again."


def init_app(app: Flask) -> None:
    """Register the blueprint and rate-limit the sign-in link form (it sends mail)."""
    from newsletter import limits

    app.register_blueprint(bp)
    limit = limits.limiter(app).limit(lambda: current_app.config["SIGN_IN_LIMIT"], methods=["POST"],
                                      error_message=TOO_MANY, scope="member-sign-in")
    app.view_functions["account.sign_in"] = limit(app.view_functions["account.sign_in"])


def _now() -> datetime:
    return datetime.now(timezone.utc)


@bp.get("")
def account():
    reader_id = member_session.current_reader_id()
    reader = db.session().get(Reader, reader_id) if reader_id else None
    if reader is None:
        return redirect(url_for("account.sign_in"))
    session = db.session()
    grace = int(current_app.config["MEMBERSHIP_GRACE_DAYS"])
    return render_template("account/account.html", reader=reader,
                           membership=memberships.current_membership(session, reader.id),
                           state=memberships.reader_state(session, reader.id, _now(), grace))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if request.method == "GET":
        return render_template("account/sign_in.html")
    session = db.session()
    member_signin.request_link(session, request.form.get("email", ""))
    session.commit()
    # The same answer for every address: the page tells nobody who is a member.
    return render_template("account/check_inbox.html")


@bp.get("/sign-in/<token>")
def sign_in_link(token: str):
    try:
        member_signin.peek(db.session(), token, _now())
    except member_signin.InvalidToken:
        return render_template("account/link_problem.html"), 410
    return render_template("account/sign_in_link.html", token=token)


@bp.post("/sign-in/<token>")
def redeem(token: str):
    session = db.session()
    try:
        reader_id = member_signin.redeem(session, token, _now())
    except member_signin.InvalidToken:
        return render_template("account/link_problem.html"), 410
    session.commit()
    return member_session.sign_in(redirect(url_for("account.account"), 303), reader_id)


@bp.post("/portal")
def portal():
    from newsletter.web.membership import portal_redirect

    reader_id = member_session.current_reader_id()
    if reader_id is None:
        return redirect(url_for("account.sign_in"), 303)
    return portal_redirect(reader_id)


@bp.post("/sign-out")
def sign_out():
    return member_session.sign_out(redirect(url_for("reader.front_page"), 303))
