"""Blueprints. Views are shims: parse, one domain call, render or redirect."""
from __future__ import annotations

from flask import Flask, Response

# Our pages load nothing from elsewhere: one stylesheet of our own, no scripts yet.
# form-action is left out on purpose: the checkout form is answered with a redirect to
# Stripe, which browsers check against form-action.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def init_app(app: Flask) -> None:
    from newsletter.web import api, assets, devmail, errors, health, reader

    app.register_blueprint(reader.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(assets.bp)
    app.register_blueprint(devmail.bp)
    app.register_blueprint(health.bp)
    app.add_template_global(assets.asset_url)
    errors.init_app(app)
    app.after_request(security_headers)


def security_headers(response: Response) -> Response:
    """Add the headers every response carries; a view that set its own keeps it."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # A view with a policy of its own (the mail catcher's framed mail) decides framing too.
    if "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Frame-Options"] = "DENY"
    return response
