"""Bearer-token authentication for the operator JSON API (RFC 6750).

`operator_required` reads `Authorization: Bearer <token>` (a token from
`newsletter operator token`), sets `g.operator`, and answers 401 with a
`WWW-Authenticate: Bearer` challenge when the token is missing, unknown or revoked.
"""
from __future__ import annotations

from functools import wraps

from flask import g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from newsletter import db, operators

REALM = "newsletter"


def operator_required(view):
    """Run `view` only for a request with a live operator token, as `g.operator`."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        raw = bearer_token()
        if raw is None:
            raise _challenge("Send an operator token: Authorization: Bearer <token>.")
        session = db.session()
        try:
            g.operator = operators.operator_for_token(session, raw)
        except operators.InvalidToken as e:
            raise _challenge(str(e), error="invalid_token") from None
        session.commit()  # the token's last use, whatever the view does next
        return view(*args, **kwargs)

    return wrapper


def bearer_token() -> str | None:
    """The token of this request's `Authorization: Bearer` header, if it has one."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _challenge(message: str, error: str | None = None) -> Unauthorized:
    params = {"realm": REALM} | ({"error": error} if error else {})
    return Unauthorized(message, www_authenticate=WWWAuthenticate("bearer", params))
