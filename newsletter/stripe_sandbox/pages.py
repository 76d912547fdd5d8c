"""The hosted pages: Checkout's payment page, the billing portal, an invoice.

Plain HTML forms with no outside assets. Field names are stable for browser tests:
`email`, `card_number`, `subscription`; buttons "Pay", "Cancel membership",
"Don't cancel", "Update card"; links "Cancel" (to cancel_url) and "Return".
"""
from __future__ import annotations

import datetime

from jinja2 import Environment, PackageLoader, select_autoescape
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from newsletter.stripe_sandbox import portal, subscriptions
from newsletter.stripe_sandbox.checkout import SessionNotOpen
from newsletter.stripe_sandbox.errors import CardDeclined, StripeError
from newsletter.stripe_sandbox.routing import Routes

routes = Routes("page")
NOTICES = {"canceled": "Your membership will end at the end of the period.",
           "renewed": "Your membership will renew.", "card": "Your card was updated."}


def money(amount: int, currency: str) -> str:
    return f"{amount / 100:,.2f} {currency.upper()}"


def interval(price: dict) -> str:
    recurring = price["recurring"] or {}
    count, unit = recurring.get("interval_count", 1), recurring.get("interval")
    if unit is None:
        return ""
    return f"per {unit}" if count == 1 else f"every {count} {unit}s"


def date(timestamp: int) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return f"{moment.day} {moment:%B %Y}"


def date_time(timestamp: int) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return f"{date(timestamp)} {moment:%H:%M} UTC"


def status_text(sub: dict) -> str:
    return {"past_due": "Payment failed — please update your card", "trialing": "Free trial",
            "unpaid": "Unpaid — please update your card"}.get(sub["status"], sub["status"].title())


templates = Environment(loader=PackageLoader("newsletter.stripe_sandbox", "templates"),
                        autoescape=select_autoescape(["html"]))
templates.globals.update(money=money, interval=interval, date=date, date_time=date_time,
                         status_text=status_text)


def render(name: str, status: int = 200, **context) -> Response:
    return Response(templates.get_template(name).render(**context), status=status,
                    content_type="text/html; charset=utf-8")


def closed(heading: str, message: str, status: int = 200, link=None, link_text="") -> Response:
    return render("closed.html", status, heading=heading, message=message, link=link,
                  link_text=link_text)


# ---------------------------------------------------------------- Checkout

@routes.route("/c/pay/<id>", "GET")
def checkout_page(sb, request, id):
    with sb.store.transaction():
        session = sb.store.objects.get(id)
        if session is None or session["object"] != "checkout.session":
            return closed("Not found", "There is no such Checkout Session.", 404)
        if session["status"] != "open":
            return session_closed(session)
        return checkout_form(sb, session)


def checkout_form(sb, session: dict, status: int = 200, error: str | None = None,
                  email: str | None = None, card_number: str | None = None) -> Response:
    private = sb.store.private[session["id"]]
    price = sb.store.objects[private["price"]]
    customer = sb.store.objects.get(session["customer"] or "")
    fixed_email = session["customer_email"] or (customer and customer["email"])
    return render("checkout.html", status, session=session, price=price,
                  product=sb.store.objects[price["product"]], quantity=private["quantity"],
                  trial_days=private["subscription_data"].get("trial_period_days"),
                  email=fixed_email or email, email_fixed=bool(fixed_email),
                  card_number=card_number, error=error, action=f"/c/pay/{session['id']}")


def session_closed(session: dict) -> Response:
    if session["status"] == "complete":
        return closed("Payment complete", "Thanks, this subscription is paid.",
                      link=success_url(session), link_text="Continue")
    return closed("Session expired", "This Checkout Session has expired.", 410,
                  link=session["cancel_url"], link_text="Back")


def success_url(session: dict) -> str | None:
    url = session["success_url"]
    return url.replace("{CHECKOUT_SESSION_ID}", session["id"]) if url else None


@routes.route("/c/pay/<id>", "POST")
def checkout_pay(sb, request, id):
    email, card = request.form.get("email", ""), request.form.get("card_number", "")
    with sb.store.transaction():
        try:
            session = sb.pay_checkout(id, card=card, email=email or None)
        except SessionNotOpen:
            return session_closed(sb.store.objects[id])
        except StripeError as error:
            if error.status == 404:
                return closed("Not found", "There is no such Checkout Session.", 404)
            status = 402 if isinstance(error, CardDeclined) else 400
            return checkout_form(sb, sb.store.objects[id], status, error.message, email, card)
    url = success_url(session)
    return redirect(url, 303) if url else session_closed(session)


# ---------------------------------------------------------------- the billing portal

@routes.route("/p/session/<id>", "GET")
def portal_page(sb, request, id):
    with sb.store.transaction():
        return portal_view(sb, id, notice=NOTICES.get(request.args.get("notice", "")))


def portal_view(sb, session_id: str, status: int = 200, notice=None, error=None) -> Response:
    session = sb.store.objects.get(session_id)
    if session is None or session["object"] != "billing_portal.session":
        return closed("Not found", "This portal link is not valid.", 404)
    customer = sb.store.objects[session["customer"]]
    method = sb.store.objects.get(customer["invoice_settings"]["default_payment_method"] or "")
    return render("portal.html", status, session=session, customer=customer,
                  subscriptions=portal.shown_subscriptions(sb.store, customer["id"]),
                  card=method and method["card"], notice=notice, error=error,
                  base=f"/p/session/{session_id}", product_name=lambda price: product_name(sb, price))


def product_name(sb, price: dict) -> str:
    return sb.store.objects.get(price["product"], {}).get("name", "Membership")


@routes.route("/p/session/<id>/cancel", "POST")
def portal_cancel(sb, request, id):
    return portal_subscription_action(sb, request, id, True, "canceled")


@routes.route("/p/session/<id>/renew", "POST")
def portal_renew(sb, request, id):
    return portal_subscription_action(sb, request, id, False, "renewed")


def portal_subscription_action(sb, request, session_id: str, cancel: bool, notice: str):
    with sb.store.transaction():
        session = sb.store.objects.get(session_id)
        if session is None or session["object"] != "billing_portal.session":
            return closed("Not found", "This portal link is not valid.", 404)
        try:
            sub = portal.customer_subscription(sb.store, session["customer"],
                                               request.form.get("subscription", ""))
        except StripeError as error:
            return portal_view(sb, session_id, 404, error=error.message)
        subscriptions.set_cancel_at_period_end(sb.store, sub, cancel)
    return redirect(f"/p/session/{session_id}?notice={notice}", 303)


@routes.route("/p/session/<id>/card", "POST")
def portal_card(sb, request, id):
    with sb.store.transaction():
        session = sb.store.objects.get(id)
        if session is None or session["object"] != "billing_portal.session":
            return closed("Not found", "This portal link is not valid.", 404)
        try:
            portal.update_card(sb.store, session["customer"], request.form.get("card_number", ""))
        except CardDeclined as error:
            return portal_view(sb, id, 402, error=error.message)
    return redirect(f"/p/session/{id}?notice=card", 303)


# ---------------------------------------------------------------- invoices

@routes.route("/i/<id>", "GET")
def invoice_page(sb, request, id):
    with sb.store.transaction():
        invoice = sb.store.objects.get(id)
        if invoice is None or invoice["object"] != "invoice":
            return closed("Not found", "There is no such invoice.", 404)
        return render("invoice.html", invoice=invoice)


# ---------------------------------------------------------------- the developer's dashboard

@routes.route("/_sandbox/", "GET")
def dashboard(sb, request):
    attempts: dict[str, list] = {}
    for delivery in sb.deliveries:
        attempts.setdefault(delivery.event_id, []).append(delivery)
    with sb.store.transaction() as store:
        return render("dashboard.html", now=store.now(), subscriptions=store.all("subscription"),
                      emails={c["id"]: c["email"] for c in store.all("customer")},
                      events=store.events[::-1][:30], attempts=attempts)
