"""Stripe's API routes: each parses nothing itself and calls one operation.

Handlers take the sandbox, the checked parameters and the path's id, and return a live
object or a list; the server copies it, expands `expand` and answers JSON.
"""
from __future__ import annotations

from newsletter.stripe_sandbox import catalog, checkout, events, invoices, portal, subscriptions
from newsletter.stripe_sandbox.params import COMMON, LIST, STR
from newsletter.stripe_sandbox.routing import Routes

routes = Routes("api")
EVENT_LIST = {**LIST, "type": STR, "types": [STR]}


def _retrieve(kind: str):
    def retrieve(sb, params, id):
        return sb.store.get(id, kind)
    return retrieve


for _path, _kind in [("products", "product"), ("prices", "price"), ("customers", "customer"),
                     ("subscriptions", "subscription"), ("invoices", "invoice"),
                     ("events", "event"), ("payment_methods", "payment_method")]:
    routes.route(f"/v1/{_path}/<id>", "GET", COMMON)(_retrieve(_kind))


# ---------------------------------------------------------------- catalogue

@routes.route("/v1/products", "POST", catalog.PRODUCT_CREATE)
def create_product(sb, params):
    return catalog.create_product(sb.store, params)


@routes.route("/v1/products/<id>", "POST", catalog.PRODUCT_UPDATE)
def update_product(sb, params, id):
    return catalog.update_product(sb.store, id, params)


@routes.route("/v1/products", "GET", catalog.PRODUCT_LIST)
def list_products(sb, params):
    return catalog.list_products(sb.store, params)


@routes.route("/v1/prices", "POST", catalog.PRICE_CREATE)
def create_price(sb, params):
    return catalog.create_price(sb.store, params)


@routes.route("/v1/prices/<id>", "POST", catalog.PRICE_UPDATE)
def update_price(sb, params, id):
    return catalog.update_price(sb.store, id, params)


@routes.route("/v1/prices", "GET", catalog.PRICE_LIST)
def list_prices(sb, params):
    return catalog.list_prices(sb.store, params)


@routes.route("/v1/customers", "POST", catalog.CUSTOMER_FIELDS)
def create_customer(sb, params):
    return catalog.create_customer(sb.store, params)


@routes.route("/v1/customers/<id>", "POST", catalog.CUSTOMER_FIELDS)
def update_customer(sb, params, id):
    return catalog.update_customer(sb.store, id, params)


@routes.route("/v1/customers", "GET", catalog.CUSTOMER_LIST)
def list_customers(sb, params):
    return catalog.list_customers(sb.store, params)


# ---------------------------------------------------------------- checkout and portal

@routes.route("/v1/checkout/sessions", "POST", checkout.SESSION_CREATE)
def create_checkout_session(sb, params):
    return checkout.create_session(sb.store, params)


@routes.route("/v1/checkout/sessions/<id>", "GET", COMMON)
def retrieve_checkout_session(sb, params, id):
    session = sb.store.get(id, "checkout.session")
    if "line_items" in params.get("expand", []):
        return {**session, "line_items": checkout.line_items(sb.store, session)}
    return session


@routes.route("/v1/checkout/sessions/<id>/line_items", "GET", LIST)
def list_checkout_line_items(sb, params, id):
    return checkout.line_items(sb.store, sb.store.get(id, "checkout.session"))


@routes.route("/v1/checkout/sessions/<id>/expire", "POST", COMMON)
def expire_checkout_session(sb, params, id):
    return checkout.expire(sb.store, sb.store.get(id, "checkout.session"))


@routes.route("/v1/checkout/sessions", "GET", checkout.SESSION_LIST)
def list_checkout_sessions(sb, params):
    return checkout.list_sessions(sb.store, params)


@routes.route("/v1/billing_portal/sessions", "POST", portal.PORTAL_CREATE)
def create_portal_session(sb, params):
    return portal.create_session(sb.store, params)


# ---------------------------------------------------------------- subscriptions, invoices

@routes.route("/v1/subscriptions/<id>", "POST", subscriptions.SUBSCRIPTION_UPDATE)
def update_subscription(sb, params, id):
    return subscriptions.update_subscription(sb.store, id, params)


@routes.route("/v1/subscriptions/<id>", "DELETE", subscriptions.SUBSCRIPTION_CANCEL)
def cancel_subscription(sb, params, id):
    return subscriptions.cancel_subscription(sb.store, id, params)


@routes.route("/v1/subscriptions", "GET", subscriptions.SUBSCRIPTION_LIST)
def list_subscriptions(sb, params):
    return subscriptions.list_subscriptions(sb.store, params)


@routes.route("/v1/invoices", "GET", invoices.INVOICE_LIST)
def list_invoices(sb, params):
    return invoices.list_invoices(sb.store, params)


# ---------------------------------------------------------------- events and endpoints

@routes.route("/v1/events", "GET", EVENT_LIST)
def list_events(sb, params):
    types = params.get("types") or ([params["type"]] if "type" in params else None)
    return sb.store.page("event", params, "/v1/events",
                         lambda event: types is None or event["type"] in types)


@routes.route("/v1/webhook_endpoints", "POST", events.ENDPOINT_CREATE)
def create_webhook_endpoint(sb, params):
    return sb.webhooks.add_endpoint(params, sb.store.now())


@routes.route("/v1/webhook_endpoints/<id>", "GET", COMMON)
def retrieve_webhook_endpoint(sb, params, id):
    return sb.webhooks.get_endpoint(id)


@routes.route("/v1/webhook_endpoints/<id>", "DELETE", COMMON)
def delete_webhook_endpoint(sb, params, id):
    return sb.webhooks.remove_endpoint(id)


@routes.route("/v1/webhook_endpoints", "GET", events.ENDPOINT_LIST)
def list_webhook_endpoints(sb, params):
    return sb.webhooks.list_endpoints(params.get("limit", 10))
