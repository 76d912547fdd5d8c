"""Helpers for membership tests: a reader's browser over HTTP (requests), through our
pages and the sandbox's hosted checkout and portal pages."""
from __future__ import annotations

import requests

from tests.web.markup import parse

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
FAILS_LATER_CARD = "4000000000000341"


def form_of(html: str, button: str | None = None):
    """The form holding `button` (by its text), or the page's only form."""
    forms = parse(html.encode()).find_all("form")
    if button is None:
        assert len(forms) == 1, len(forms)
        return forms[0]
    found = [f for f in forms if any(b.text() == button for b in f.find_all("button"))]
    assert found, f"no form with a {button!r} button"
    return found[0]


def submit(browser: requests.Session, page: requests.Response, fields: dict | None = None,
           button: str | None = None) -> requests.Response:
    """Fill and submit a form of `page` as a browser does (hidden fields kept), fetching the
    CSRF token first where the page left it out, as its csrf.js does."""
    form = form_of(page.text, button)
    data = {i.attrs["name"]: i.attrs.get("value", "") for i in form.find_all("input") if _sent(i)}
    if any("data-csrf" in i.attrs and not i.attrs.get("value") for i in form.find_all("input")):
        data["csrf_token"] = browser.get(requests.compat.urljoin(page.url, "/api/v1/csrf")).json()["csrf_token"]
    action = requests.compat.urljoin(page.url, form.attrs.get("action") or page.url)
    return browser.post(action, data=data | (fields or {}), allow_redirects=False)


def _sent(field) -> bool:
    """Whether a browser sends this input: named, and not a box or radio button left unticked."""
    ticked = field.attrs.get("type") not in ("checkbox", "radio") or "checked" in field.attrs
    return "name" in field.attrs and ticked


def follow(browser: requests.Session, response: requests.Response) -> requests.Response:
    while response.status_code in (301, 302, 303):
        response = browser.get(requests.compat.urljoin(response.url, response.headers["Location"]),
                               allow_redirects=False)
    return response


def start_checkout(browser: requests.Session, site_url: str, **fields) -> requests.Response:
    """Press "Join" on the join page; the sandbox's hosted checkout page."""
    page = browser.get(f"{site_url}/membership")
    response = submit(browser, page, fields)
    assert response.status_code == 303, response.text[:300]
    return follow(browser, response)


def pay(browser: requests.Session, checkout_page: requests.Response, email: str,
        card: str = GOOD_CARD) -> requests.Response:
    """Pay on the hosted page; the page Stripe sends the reader back to (or the page again)."""
    return follow(browser, submit(browser, checkout_page, {"email": email, "card_number": card}))
