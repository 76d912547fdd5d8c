"""Buying the membership: checkout, the pages Stripe sends readers back to, and webhooks."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from newsletter import db, member_mails, memberships, stripe_events
from newsletter.billing import (LOOKUP_KEYS, Billing, BillingError, BillingNotConfigured, InvalidSignature, Plan,
                                money)
from newsletter.models import Reader
from newsletter.web import errors, member_session, prompt_reader

bp = Blueprint("membership", __name__)
bp.add_app_template_filter(money, "money")  # the join page's prices


def billing() -> Billing:
    return Billing.for_app(current_app)


def plan() -> Plan:
    return Plan.from_config(current_app.config)


def price_id(interval: str = "month") -> str:
    """The price Checkout sells for `interval`: STRIPE_PRICE_ID (monthly) when set, otherwise the
    active price `newsletter stripe sync` made (looked up once per process)."""
    configured = current_app.config["STRIPE_PRICE_ID"]
    if interval == "month" and configured:
        return configured
    found = current_app.extensions.setdefault("membership_prices", {})
    if not found.get(interval):
        price = billing().price_id(interval)
        if not price:
            raise BillingNotConfigured(f"no {LOOKUP_KEYS[interval]} price: run `newsletter stripe sync`")
        found[interval] = price
    return found[interval]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _grace() -> int:
    return int(current_app.config["MEMBERSHIP_GRACE_DAYS"])


@bp.get("/membership")
def join():
    return join_page({})


def join_page(form, **notice) -> str:
    """The join page; a form sent back keeps its plan, prompt, variant and story."""
    return render_template("membership/join.html", plan=plan(), chosen=form.get("interval") or "month",
                           prompt_name=form.get("prompt", "membership")[:100] or "membership",
                           variant_id=form.get("variant", "")[:100], slug=form.get("article", "")[:200], **notice)


@bp.post("/membership/checkout")
def checkout():
    form = request.form
    interval = form.get("interval") or "month"  # the appeal's and the gate's forms offer no choice
    if interval not in plan().amounts:  # never a monthly charge for a reader who asked for another
        return join_page(form, refused_interval=interval), 422
    attribution = _attribution(form)
    session = db.session()
    reader_id = member_session.current_reader_id() or member_session.checkout_reader_id()
    reader = memberships.reader_for_checkout(session, reader_id)
    session.commit()  # the reader exists before Stripe can send an event naming it
    try:
        url = memberships.start_checkout(session, billing(), reader, price_id(interval), _return_urls(), attribution,
                                         _now(), int(current_app.config["MEMBERSHIP_TRIAL_DAYS"]), _grace())
    except memberships.AlreadyMember:
        return redirect(url_for("account.account"), 303)
    except (BillingNotConfigured, BillingError) as e:
        current_app.logger.error("checkout failed: %s", e)
        return render_template("membership/unavailable.html"), 503
    return member_session.remember_checkout(redirect(url, 303), reader.id)


def _attribution(form) -> memberships.Attribution:
    posted = memberships.Attribution(prompt=form.get("prompt", ""), variant=form.get("variant", ""),
                                     article=form.get("article", ""))
    counted = prompt_reader.known_reader_id() if prompt_reader.may_count() else None  # opted out: in no bucket
    return memberships.checkout_attribution(posted, prompt_reader.rules(), prompt_reader.redis_client(current_app),
                                            counted)


def _return_urls() -> dict:
    base = current_app.config["BASE_URL"]
    return {"success": f"{base}/membership/success?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel": f"{base}/membership/cancel"}


@bp.errorhandler(CSRFError)
def csrf_failed(error: CSRFError):
    """A checkout form without a valid token (a cached story page read without JavaScript, or an
    old one): the join page again, with a token and the form's plan, prompt, variant and story kept."""
    if request.endpoint != "membership.checkout":
        return errors.handle_http_error(error)
    return join_page(request.form, token_expired=True), 400


@bp.get("/membership/success")
def success():
    session_id = request.args.get("session_id", "")
    if not session_id.startswith("cs_") or len(session_id) > 255:
        return render_template("membership/unknown_checkout.html"), 404
    try:
        checkout = memberships.completed_checkout(billing(), session_id)
    except BillingNotConfigured as e:  # no Stripe key here: we cannot ask whether it was paid
        current_app.logger.error("checkout success page: %s", e)
        return render_template("membership/unavailable.html"), 503
    except BillingError:
        return render_template("membership/unknown_checkout.html"), 404
    if checkout is None:  # Stripe has not confirmed the payment yet: look again shortly
        return render_template("membership/processing.html", session_id=session_id)
    reader_id = _welcome_member(checkout)
    response = current_app.make_response(render_template("membership/welcome.html",
                                                         signed_in=reader_id is not None))
    return member_session.sign_in(response, reader_id) if reader_id else response


def _welcome_member(checkout: dict) -> str | None:
    """Write the new membership now (the webhook will too); the reader id to sign in, if this browser paid."""
    session = db.session()
    buyer = checkout.get("client_reference_id")
    if checkout.get("subscription"):
        try:
            memberships.sync_subscription(session, billing(), checkout["subscription"], _now(), buyer)
            session.commit()
        except (memberships.UnknownCustomer, BillingError) as e:  # the webhook's task will
            session.rollback()
            current_app.logger.warning("membership not written at checkout success: %r", e)
    # Only the browser that started this checkout is signed in by its success URL.
    mine = {member_session.current_reader_id(), member_session.checkout_reader_id()} - {None}
    return buyer if buyer in mine else None


@bp.get("/membership/cancel")
def cancelled():
    return render_template("membership/cancelled.html")


@bp.route("/membership/billing/<token>", methods=["GET", "POST"])
def billing_link(token: str):
    """The "update your card" link of the payment-failed mail: a button, then the portal."""
    try:
        reader_id = member_mails.reader_of_portal_token(current_app.config["SECRET_KEY"], token, 2 * _grace())
    except member_mails.InvalidPortalLink:
        return render_template("membership/link_problem.html"), 404
    if request.method == "GET":
        return render_template("membership/billing_link.html", token=token)
    return portal_redirect(reader_id)


def portal_redirect(reader_id: str):
    """303 to a Customer Portal session of the reader's Stripe customer."""
    reader = db.session().get(Reader, reader_id)
    if reader is None or not reader.stripe_customer_id:
        return render_template("membership/link_problem.html"), 404
    try:
        url = billing().portal_url(reader.stripe_customer_id, f"{current_app.config['BASE_URL']}/account")
    except (BillingNotConfigured, BillingError) as e:
        current_app.logger.error("portal session failed: %s", e)
        return render_template("membership/unavailable.html"), 503
    return redirect(url, 303)


@bp.post("/stripe/webhook")
def stripe_webhook():
    try:
        event = billing().verify_event(request.get_data(), request.headers.get("Stripe-Signature"))
    except InvalidSignature as e:
        return jsonify(error={"message": f"invalid signature: {e}"}), 400
    except BillingNotConfigured:
        return jsonify(error={"message": "billing is not configured"}), 503
    session = db.session()
    new = stripe_events.receive(session, event, _now())
    session.commit()
    return jsonify(received=True, duplicate=not new)
