"""The Daily Edition pages under /newsletter: sign-up, confirmation, unsubscribe, manage.

Views are shims: parse, one domain call (newsletter.subscribers), render or redirect.
The sign-up answers alike for every address (no enumeration); links from mails carry
their credential in the URL, so their pages are never cached.
"""
from __future__ import annotations

from flask import (Blueprint, Response, abort, current_app, jsonify, redirect, render_template,
                   request, url_for)
from flask_wtf.csrf import CSRFError

from newsletter import consent, db, limits, links, subscribers
from newsletter.models import Subscriber, utcnow
from newsletter.queue import QueueUnavailable
from newsletter.web import errors, requestinfo
from newsletter.web.forms import (PAUSE_DAYS, SIGNUP_NOT_TAKEN, SIGNUP_RETRY_AFTER, EraseForm,
                                  PreferencesForm, SignupForm)

bp = Blueprint("subscriptions", __name__, url_prefix="/newsletter")

LINK_PROBLEMS = {subscribers.TokenInvalid: 400, subscribers.TokenExpired: 410,
                 subscribers.TokenUsed: 410}


# ---------------------------------------------------------------- sign-up

@bp.get("")
def signup_page():
    return render_template("newsletter/signup.html", form=SignupForm())


@bp.post("/signup")
def signup():
    form = SignupForm(formdata=request.form)
    if form.is_bot:
        return to_check_inbox()
    if not form.validate():
        return render_template("newsletter/signup.html", form=form), 422
    ctx = requestinfo.consent_context("form", form.page.data, form.article.data)
    task = subscribers.signup_task(form.address, ctx, consent_text())
    try:
        limits.queue_signup(form.address, *task)
    except QueueUnavailable:
        # Nothing was taken: the form again, input kept, to send once more.
        form.form_errors.append(SIGNUP_NOT_TAKEN)
        headers = {"Retry-After": str(SIGNUP_RETRY_AFTER)}
        return render_template("newsletter/signup.html", form=form), 503, headers
    return to_check_inbox()


def to_check_inbox() -> Response:
    # The one answer to every sign-up, whatever the address's state (or a bot's).
    return redirect(url_for(".check_inbox"), 303)


@bp.get("/check-your-inbox")
def check_inbox():
    return render_template("newsletter/check_inbox.html")


@bp.errorhandler(CSRFError)
def csrf_failed(error: CSRFError):
    """An expired or missing CSRF token on the sign-up form: show the form again, input kept."""
    if request.endpoint != "subscriptions.signup":
        return errors.handle_http_error(error)
    form = SignupForm(formdata=request.form)
    form.form_errors.append("We could not verify the form (it may have expired). Please send it again.")
    return render_template("newsletter/signup.html", form=form), 400


# ---------------------------------------------------------------- double opt-in

@bp.get("/confirm/<token>")
def confirm_page(token: str):
    # Only shows a button: mail scanners follow links, so GET never confirms.
    try:
        subscribers.check_confirmation(db.session(), token)
    except subscribers.ConfirmationError as error:
        return link_problem(error)
    return render_template("newsletter/confirm.html", token=token)


@bp.post("/confirm/<token>")
def confirm(token: str):
    session = db.session()
    try:
        subscriber = subscribers.confirm(session, token, requestinfo.consent_context("mail"),
                                         consent_text())
    except subscribers.ConfirmationError as error:
        session.rollback()
        return link_problem(error)
    session.commit()
    return render_template("newsletter/confirmed.html", manage_token=signed(subscriber, "manage"))


def link_problem(error: subscribers.ConfirmationError):
    status = LINK_PROBLEMS.get(type(error), 400)
    return render_template("newsletter/link_problem.html", problem=type(error).__name__), status


# ---------------------------------------------------------------- unsubscribe (RFC 8058)

@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str):
    # Never unsubscribes: link scanners fetch it.
    subscriber = linked_subscriber(token, "unsubscribe")
    return render_unsubscribe(subscriber, token, PreferencesForm())


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str):
    """One-click from a mail provider (no cookies, no CSRF), or a button of the page above."""
    subscriber = linked_subscriber(token, "unsubscribe")
    if request.form.get("List-Unsubscribe") == "One-Click":
        subscribers.unsubscribe(db.session(), subscriber, requestinfo.consent_context("mail"))
        db.session().commit()
        return Response("You are unsubscribed.\n", mimetype="text/plain")
    form = PreferencesForm(formdata=request.form)
    if not form.validate():
        return render_unsubscribe(subscriber, token, form, status=422)
    change_preferences(subscriber, form)
    return redirect(url_for(".unsubscribe_page", token=token, done=form.action.data), 303)


def render_unsubscribe(subscriber: Subscriber, token: str, form: PreferencesForm, status: int = 200):
    return render_template("newsletter/unsubscribe.html", form=form, pause_choices=PAUSE_DAYS,
                           **page_context(subscriber, token)), status


# ---------------------------------------------------------------- the subscriber's own page

@bp.get("/manage/<token>")
def manage_page(token: str):
    subscriber = linked_subscriber(token, "manage")
    return render_manage(subscriber, token, PreferencesForm(), EraseForm())


@bp.post("/manage/<token>")
def manage(token: str):
    subscriber = linked_subscriber(token, "manage")
    form = PreferencesForm(formdata=request.form)
    if not form.validate():
        return render_manage(subscriber, token, form, EraseForm(formdata=None), status=422)
    change_preferences(subscriber, form)
    return redirect(url_for(".manage_page", token=token, done=form.action.data), 303)


@bp.get("/manage/<token>/export")
def export(token: str):
    subscriber = linked_subscriber(token, "manage")
    response = jsonify(subscribers.export_data(db.session(), subscriber))
    response.headers["Content-Disposition"] = 'attachment; filename="daily-edition-my-data.json"'
    return response


@bp.post("/manage/<token>/erase")
def erase(token: str):
    subscriber = linked_subscriber(token, "manage")
    form = EraseForm(formdata=request.form)
    if not form.validate():
        return render_manage(subscriber, token, PreferencesForm(formdata=None), form, status=422)
    subscribers.erase(db.session(), subscriber)
    db.session().commit()
    return render_template("newsletter/erased.html")


def render_manage(subscriber: Subscriber, token: str, form: PreferencesForm, erase_form: EraseForm,
                  status: int = 200):
    data = subscribers.export_data(db.session(), subscriber)
    return render_template("newsletter/manage.html", data=data, form=form, erase_form=erase_form,
                           **page_context(subscriber, token)), status


# ---------------------------------------------------------------- shared parts

def change_preferences(subscriber: Subscriber, form: PreferencesForm) -> None:
    """Apply one button of the unsubscribe or manage page, and commit."""
    session, action = db.session(), form.action.data
    ctx = requestinfo.consent_context("form")
    if action == "unsubscribe":
        subscribers.unsubscribe(session, subscriber, ctx)
    elif action == "pause":
        subscribers.pause(session, subscriber, form.days.data)
    elif action == "resume":
        subscribers.resume(session, subscriber)
    else:
        subscribers.resubscribe(session, subscriber, ctx, consent_text())
    session.commit()


def page_context(subscriber: Subscriber, token: str) -> dict:
    paused = subscriber.paused_until is not None and subscriber.paused_until > utcnow()
    return {"subscriber": subscriber, "token": token, "done": request.args.get("done"),
            "paused_until": subscriber.paused_until if paused else None}


def linked_subscriber(token: str, purpose: str) -> Subscriber:
    """The subscriber a signed link stands for; a 404 page for any bad link."""
    try:
        return links.subscriber_for_token(db.session(), token, purpose,
                                          current_app.config["SECRET_KEY"])
    except links.InvalidLink:
        abort(404)


def signed(subscriber: Subscriber, purpose: str) -> str:
    return links.make_token(subscriber, purpose, current_app.config["SECRET_KEY"])


@bp.app_template_global()
def consent_text() -> str:
    """The consent wording in force: the label of the box, and what is recorded as agreed."""
    return consent.configured_text(current_app.config)


@bp.after_request
def never_cache_links(response: Response) -> Response:
    # Pages behind a token from a mail are that reader's own: keep them out of caches.
    if request.view_args and "token" in request.view_args:
        response.headers["Cache-Control"] = "no-store"
    return response
