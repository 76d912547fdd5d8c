"""Operators for the console and API tests: made in the database, signed in through the
real sign-in form, or given a real bearer token."""
from __future__ import annotations

from urllib.parse import urlsplit

from newsletter import db, operators
from tests.web.markup import parse

PASSWORD = "correct horse battery staple"


def make_operator(app, email: str = "desk@example.org", password: str = PASSWORD) -> int:
    with app.app_context():
        session = db.session()
        operator = operators.create_operator(session, email, password)
        session.commit()
        return operator.id


def bearer(app, email: str = "desk@example.org") -> dict:
    """Authorization headers with a new token of an operator (made if needed)."""
    with app.app_context():
        session = db.session()
        try:
            operator = operators.by_email(session, email)
        except operators.UnknownOperator:
            operator = operators.create_operator(session, email, PASSWORD)
        token = operators.issue_token(session, operator)
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def csrf_token(client, path: str = "/operator/login") -> str:
    """The CSRF token of this client's session, read from a page's form."""
    page = parse(client.get(path).data)
    return page.find_all("input", name="csrf_token")[0].attrs["value"]


def sign_in(client, email: str = "desk@example.org", password: str = PASSWORD, next_page: str | None = None):
    """Sign in through the form, as a browser would; the response."""
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    if next_page is not None:
        data["next"] = next_page
    return client.post("/operator/login", data=data)


def location_path(response) -> str:
    """The path and query a redirect points to."""
    parts = urlsplit(response.headers["Location"])
    return parts.path + (f"?{parts.query}" if parts.query else "")


def sign_in_page(page, email: str = "desk@example.org", password: str = PASSWORD) -> None:
    """Fill and send the console's sign-in form in a browser page (Playwright)."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
