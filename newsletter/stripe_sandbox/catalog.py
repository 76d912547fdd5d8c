"""Products, prices and customers: Stripe's catalogue objects and their API operations."""
from __future__ import annotations

import copy

from newsletter.stripe_sandbox.errors import StripeError, missing_parameter
from newsletter.stripe_sandbox.params import BOOL, INT, LIST, METADATA, STR, one_of, merge_metadata
from newsletter.stripe_sandbox.store import Store

PRODUCT_FIELDS = {"name": STR, "description": STR, "metadata": METADATA, "active": BOOL}
PRODUCT_CREATE = {**PRODUCT_FIELDS, "id": STR, "expand": [STR]}
PRODUCT_UPDATE = {**PRODUCT_FIELDS, "expand": [STR]}
PRODUCT_LIST = {**LIST, "active": BOOL}

PRICE_UPDATE = {"active": BOOL, "lookup_key": STR, "transfer_lookup_key": BOOL,
                "metadata": METADATA, "nickname": STR, "expand": [STR]}
PRICE_CREATE = {**PRICE_UPDATE, "product": STR, "unit_amount": INT, "currency": STR,
                "recurring": {"interval": one_of("day", "week", "month", "year"),
                              "interval_count": INT}}
PRICE_LIST = {**LIST, "active": BOOL, "product": STR, "lookup_keys": [STR],
              "type": one_of("one_time", "recurring"), "currency": STR}

CUSTOMER_FIELDS = {"email": STR, "name": STR, "metadata": METADATA, "description": STR,
                   "expand": [STR]}
CUSTOMER_LIST = {**LIST, "email": STR}


def _require(params: dict, *names: str) -> None:
    for name in names:
        if name not in params or params[name] == "":
            raise missing_parameter(name)


def _blank_to_none(value):
    return None if value == "" else value


# ---------------------------------------------------------------- products

def create_product(store: Store, params: dict) -> dict:
    _require(params, "name")
    product_id = params.get("id") or store.new_id("prod_", 14)
    if product_id in store.objects:
        raise StripeError(f"Product already exists with that id: {product_id}", param="id",
                          code="resource_already_exists")
    product = {
        "id": product_id, "object": "product", "active": params.get("active", True),
        "created": store.now(), "default_price": None, "description": None, "images": [],
        "livemode": False, "marketing_features": [], "metadata": {}, "name": params["name"],
        "package_dimensions": None, "shippable": None, "statement_descriptor": None,
        "tax_code": None, "type": "service", "unit_label": None, "updated": store.now(),
        "url": None,
    }
    _apply_product(product, params)
    store.add(product)
    store.emit("product.created", product)
    return product


def update_product(store: Store, product_id: str, params: dict) -> dict:
    product = store.get(product_id, "product")
    before = copy.deepcopy(product)
    _apply_product(product, params)
    product["updated"] = store.now()
    store.emit_changes("product.updated", product, before)
    return product


def _apply_product(product: dict, params: dict) -> None:
    for key in ("name", "active"):
        if key in params:
            product[key] = params[key]
    if "description" in params:
        product["description"] = _blank_to_none(params["description"])
    if "metadata" in params:
        product["metadata"] = merge_metadata(product["metadata"], params["metadata"])


def list_products(store: Store, params: dict) -> dict:
    active = params.get("active")
    return store.page("product", params, "/v1/products",
                      lambda p: active is None or p["active"] == active)


# ---------------------------------------------------------------- prices

def create_price(store: Store, params: dict) -> dict:
    _require(params, "product", "currency", "unit_amount")
    store.get(params["product"], "product", param="product")
    recurring = params.get("recurring")
    price = {
        "id": store.new_id("price_"), "object": "price", "active": params.get("active", True),
        "billing_scheme": "per_unit", "created": store.now(),
        "currency": params["currency"].lower(), "custom_unit_amount": None, "livemode": False,
        "lookup_key": None, "metadata": {}, "nickname": None, "product": params["product"],
        "recurring": recurring and {"interval": recurring.get("interval", "month"),
                                    "interval_count": recurring.get("interval_count", 1),
                                    "meter": None, "usage_type": "licensed"},
        "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None,
        "type": "recurring" if recurring else "one_time", "unit_amount": params["unit_amount"],
        "unit_amount_decimal": str(params["unit_amount"]),
    }
    _apply_price(store, price, params)
    store.add(price)
    store.emit("price.created", price)
    return price


def update_price(store: Store, price_id: str, params: dict) -> dict:
    price = store.get(price_id, "price")
    before = copy.deepcopy(price)
    _apply_price(store, price, params)
    store.emit_changes("price.updated", price, before)
    return price


def _apply_price(store: Store, price: dict, params: dict) -> None:
    if params.get("lookup_key"):
        _claim_lookup_key(store, price, params["lookup_key"], params.get("transfer_lookup_key"))
    elif params.get("lookup_key") == "":
        price["lookup_key"] = None
    for key in ("active", "nickname"):
        if key in params:
            price[key] = _blank_to_none(params[key])
    if "metadata" in params:
        price["metadata"] = merge_metadata(price["metadata"], params["metadata"])


def _claim_lookup_key(store: Store, price: dict, key: str, transfer: bool | None) -> None:
    holders = store.all("price", lambda p: p["lookup_key"] == key and p["id"] != price["id"])
    if holders and not transfer:
        raise StripeError(f"A price (`{holders[0]['id']}`) already uses that lookup key.",
                          param="lookup_key")
    for holder in holders:
        holder["lookup_key"] = None
    price["lookup_key"] = key


def list_prices(store: Store, params: dict) -> dict:
    def match(price: dict) -> bool:
        return (params.get("active") in (None, price["active"])
                and params.get("product") in (None, price["product"])
                and params.get("type") in (None, price["type"])
                and params.get("currency") in (None, price["currency"])
                and ("lookup_keys" not in params or price["lookup_key"] in params["lookup_keys"]))
    return store.page("price", params, "/v1/prices", match)


# ---------------------------------------------------------------- customers

def create_customer(store: Store, params: dict) -> dict:
    customer = {
        "id": store.new_id("cus_", 14), "object": "customer", "address": None, "balance": 0,
        "created": store.now(), "currency": None, "default_source": None, "delinquent": False,
        "description": None, "discount": None, "email": None,
        "invoice_prefix": store.new_id("", 8).upper(),
        "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                             "footer": None, "rendering_options": None},
        "livemode": False, "metadata": {}, "name": None, "next_invoice_sequence": 1,
        "phone": None, "preferred_locales": [], "shipping": None, "tax_exempt": "none",
        "test_clock": None,
    }
    _apply_customer(customer, params)
    store.add(customer)
    store.emit("customer.created", customer)
    return customer


def update_customer(store: Store, customer_id: str, params: dict) -> dict:
    customer = store.get(customer_id, "customer")
    before = copy.deepcopy(customer)
    _apply_customer(customer, params)
    store.emit_changes("customer.updated", customer, before)
    return customer


def _apply_customer(customer: dict, params: dict) -> None:
    for key in ("email", "name", "description"):
        if key in params:
            customer[key] = _blank_to_none(params[key])
    if "metadata" in params:
        customer["metadata"] = merge_metadata(customer["metadata"], params["metadata"])


def list_customers(store: Store, params: dict) -> dict:
    email = params.get("email")
    return store.page("customer", params, "/v1/customers",
                      lambda c: email is None or c["email"] == email)
