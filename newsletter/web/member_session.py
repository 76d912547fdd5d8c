"""The member's sign-in cookie: a signed reader id, HttpOnly, Secure over https."""
from __future__ import annotations

from flask import Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "member"
SALT = "member-session"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _max_age() -> int:
    return int(current_app.config["MEMBER_COOKIE_DAYS"]) * 86400


def current_reader_id() -> str | None:
    """The signed-in reader's id, or None; read once per request."""
    if "member_reader_id" not in g:
        cookies = request.cookies  # `in`: werkzeug's `get` makes an exception when it is missing
        g.member_reader_id = _read(cookies[COOKIE] if COOKIE in cookies else None)
    return g.member_reader_id


def _read(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return _serializer().loads(value, max_age=_max_age())
    except BadSignature:  # forged, altered or expired: simply not signed in
        return None


def sign_in(response: Response, reader_id: str) -> Response:
    """Set the cookie that makes the browser `reader_id`."""
    response.set_cookie(COOKIE, _serializer().dumps(reader_id), max_age=_max_age(), httponly=True,
                        secure=current_app.config["BASE_URL"].startswith("https://"), samesite="Lax")
    g.member_reader_id = reader_id
    return response


def sign_out(response: Response) -> Response:
    response.delete_cookie(COOKIE, httponly=True, samesite="Lax")
    g.member_reader_id = None
    return response


# A reader who is not signed in gets a reader id at checkout; this cookie keeps it, so a
# second try reuses it and the success page may sign in the browser that paid (only it).
CHECKOUT_COOKIE = "checkout"
CHECKOUT_SALT = "member-checkout"
CHECKOUT_MAX_AGE = 86400


def checkout_reader_id() -> str | None:
    value = request.cookies.get(CHECKOUT_COOKIE)
    if not value:
        return None
    try:
        return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=CHECKOUT_SALT).loads(
            value, max_age=CHECKOUT_MAX_AGE)
    except BadSignature:
        return None


def remember_checkout(response: Response, reader_id: str) -> Response:
    value = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=CHECKOUT_SALT).dumps(reader_id)
    response.set_cookie(CHECKOUT_COOKIE, value, max_age=CHECKOUT_MAX_AGE, httponly=True,
                        secure=current_app.config["BASE_URL"].startswith("https://"), samesite="Lax")
    return response
