"""The operator console under /operator: sign-in, sign-out and the dashboard.

Every page needs a signed-in operator (`console_required`); the sign-in form checks the
email and password with operators.check_password and keeps the operator's id in Flask's
signed session cookie, with the time of sign-in (CONSOLE_SESSION_HOURS) and a
fingerprint of the password hash, so that a changed password ends the other sessions.
CSRFProtect covers every form; the sign-in POST is rate limited per client IP
(CONSOLE_LOGIN_LIMIT, Flask-Limiter on the app's Redis).

The edition pages are in web.console_editions, the caught mail in web.devmail.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from functools import wraps
from urllib.parse import urlsplit

from flask import (Blueprint, Flask, current_app, flash, g, jsonify, redirect, render_template, request,
                   session, url_for)
from flask_wtf.csrf import CSRFError
from sqlalchemy import select

from newsletter import db, delivery, mail, operators, schedule, suppression
from newsletter.models import Edition, Operator

bp = Blueprint("console", __name__, url_prefix="/operator")

SESSION_OPERATOR, SESSION_SINCE, SESSION_KEY = "operator_id", "operator_since", "operator_key"
DEFAULT_SESSION_HOURS = 12
DEFAULT_LOGIN_LIMIT = "10 per minute; 100 per hour"
TOO_MANY = "Too many sign-in attempts from here; wait a minute and try again."
RECENT_EDITIONS = 10


def init_app(app: Flask) -> None:
    """Register the console's blueprints and rate-limit the sign-in form."""
    from newsletter import limits
    from newsletter.web import console_editions, console_prompt_rules, console_prompts, devmail

    app.register_blueprint(bp)
    app.register_blueprint(console_editions.bp)
    app.register_blueprint(console_prompts.bp)
    app.register_blueprint(console_prompt_rules.bp)
    app.register_blueprint(devmail.moved_bp)
    app.add_template_global(lambda: mail.catcher_in_use(current_app.config), "mail_catcher_in_use")
    limit = limits.limiter(app).limit(
        lambda: current_app.config.get("CONSOLE_LOGIN_LIMIT") or DEFAULT_LOGIN_LIMIT,
        methods=["POST"], error_message=TOO_MANY, scope="console-login")
    app.view_functions["console.login"] = limit(app.view_functions["console.login"])


# ---------------------------------------------------------------- who is signed in

def console_required(view):
    """Run `view` for a signed-in operator (as `g.operator`); else off to the sign-in page."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        g.operator = signed_in_operator()
        if g.operator is None:
            return sign_in_first()
        return view(*args, **kwargs)

    return wrapper


def signed_in_operator() -> Operator | None:
    """The operator this request's session belongs to, while that session holds."""
    operator_id, since = session.get(SESSION_OPERATOR), session.get(SESSION_SINCE)
    if not isinstance(operator_id, int) or not isinstance(since, (int, float)):
        return None
    hours = float(current_app.config.get("CONSOLE_SESSION_HOURS") or DEFAULT_SESSION_HOURS)
    if not 0 <= time.time() - since < hours * 3600:
        return None
    operator = db.session().get(Operator, operator_id)
    if operator is None or not hmac.compare_digest(str(session.get(SESSION_KEY)), _key(operator)):
        return None
    return operator


def sign_in_first():
    """The answer to a request without a signed-in operator: JSON 401 or the sign-in page."""
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error={"code": "unauthorized", "message": "Sign in to the console."}), 401
    # After signing in: back to this page; for a form, to the page it was sent from.
    target = request.full_path.rstrip("?") if request.method == "GET" else _referring_page()
    return redirect(url_for("console.login", next=target), 303 if request.method != "GET" else 302)


def _referring_page() -> str | None:
    """The path (and query) of the Referer, when it is a page of this site; _safe_next judges it."""
    if not on_this_site(request.referrer):
        return None
    parts = urlsplit(request.referrer)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def on_this_site(url: str | None) -> bool:
    """Whether `url` (an Origin or a Referer the browser sent) is of this site's host."""
    return urlsplit(url or "").netloc == request.host


def _key(operator: Operator) -> str:
    # Changes whenever the password does; reveals nothing of it.
    return hashlib.sha256(operator.password_hash.encode()).hexdigest()[:32]


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console page of ours, never another site."""
    parts = urlsplit(target or "")
    if (target and not parts.scheme and not parts.netloc and "\\" not in target
            and (parts.path == "/operator" or parts.path.startswith("/operator/"))):
        return target
    return url_for("console.dashboard")


# ---------------------------------------------------------------- pages

@bp.route("/login", methods=["GET", "POST"])
def login():
    next_page = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if signed_in_operator() is not None:
            return redirect(next_page)
        return render_template("operator/login.html", next_page=next_page, email="")
    email = request.form.get("email", "")
    try:
        operator = operators.check_password(db.session(), email, request.form.get("password", ""))
    except operators.InvalidCredentials as e:
        return render_template("operator/login.html", next_page=next_page, email=email, error=str(e)), 401
    # A new session: nothing from before signing in (the old CSRF token included) carries over.
    session.clear()
    session.update({SESSION_OPERATOR: operator.id, SESSION_SINCE: int(time.time()),
                    SESSION_KEY: _key(operator)})
    return redirect(next_page, 303)


@bp.errorhandler(CSRFError)
def csrf_failed(error: CSRFError):
    """A form sent with a stale or missing token: say so in words; nothing was done."""
    if request.endpoint == "console.login":
        return render_template("operator/login.html", next_page=_safe_next(request.values.get("next")),
                               email=request.form.get("email", ""),
                               error="The form had expired; please sign in again."), 400
    return render_template("errors/error.html", error=error), 400


@bp.post("/logout")
def logout():
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("console.login"), 303)


@bp.get("/")
@console_required
def dashboard():
    db_session = db.session()
    recent = db_session.scalars(select(Edition).order_by(Edition.id.desc()).limit(RECENT_EDITIONS)).all()
    return render_template("operator/dashboard.html", counts=suppression.counts(db_session),
                           editions=[(e, delivery.progress(db_session, e.id)) for e in recent],
                           schedule=_schedule_line())


def _schedule_line() -> str:
    try:
        return schedule.describe(schedule.DailySettings.from_config(current_app.config))
    except ValueError as e:
        return f"not working: {e}"
