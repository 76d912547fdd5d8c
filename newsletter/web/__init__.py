"""Blueprints. Views are shims: parse, one domain call, render or redirect."""
from __future__ import annotations

from flask import Flask, Response
from flask_cors import CORS
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

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


# Routes other sites' pages may call from a browser, for the origins in CORS_ORIGINS.
PUBLIC_API_PATHS = [r"/api/v1/signups"]


def init_app(app: Flask) -> None:
    from newsletter import limits
    from newsletter.web import api, assets, devmail, errors, health, reader, requestinfo, subscriptions
    from newsletter.web import console, editions_api, openapi, operator_api

    app.register_blueprint(reader.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(assets.bp)
    app.register_blueprint(devmail.bp)
    app.register_blueprint(health.bp)
    from newsletter.web import preview  # operator previews of editions
    app.register_blueprint(preview.bp)
    app.register_blueprint(subscriptions.bp)
    csrf = CSRFProtect(app)
    # JSON carries no ambient credential; one-click unsubscribe comes from mail providers
    # with no cookies (RFC 8058): the token in its URL is the credential.
    csrf.exempt(api.bp)
    csrf.exempt(subscriptions.unsubscribe)
    app.register_blueprint(operator_api.bp)
    csrf.exempt(operator_api.bp)  # bearer tokens: nothing ambient to forge
    app.register_blueprint(editions_api.bp)
    csrf.exempt(editions_api.bp)  # bearer tokens too
    app.register_blueprint(openapi.bp)
    from newsletter.web import prompt_reader
    prompt_reader.init_app(app)  # the prompt slot's API, /reading-history, the subscriber cookie
    from newsletter.web import account, membership
    app.register_blueprint(membership.bp)
    csrf.exempt(membership.stripe_webhook)  # Stripe signs its requests; no cookies to forge
    limits.init_app(app)
    limits.limit_signups(app, ["subscriptions.signup", "api.signup"], requestinfo.submitted_address)
    console.init_app(app)  # the operator console: sign-in, dashboard, editions, caught mail
    account.init_app(app)  # members: sign-in by mail, the account page
    init_cors(app)
    init_proxy_fix(app)
    app.add_template_global(assets.asset_url)
    errors.init_app(app)
    app.after_request(security_headers)


def init_cors(app: Flask) -> None:
    origins = app.config["CORS_ORIGINS"]
    if origins:
        options = {"origins": origins, "methods": ["POST"], "allow_headers": ["Content-Type"],
                   "max_age": 3600}
        CORS(app, resources={path: options for path in PUBLIC_API_PATHS})


def init_proxy_fix(app: Flask) -> None:
    """Trust X-Forwarded-* only as far as PROXY_FIX says (proxies in front of gunicorn).

    PROXY_FIX = N trusts N proxies for X-Forwarded-For and -Proto; a mapping is passed to
    ProxyFix as it is ({"x_for": 1, "x_proto": 1, "x_host": 1}). Unset: headers ignored,
    so a client cannot choose the IP that rate limits and consent records see.
    """
    setting = app.config["PROXY_FIX"]
    if not setting:
        return
    options = setting if isinstance(setting, dict) else {"x_for": int(setting), "x_proto": int(setting)}
    app.wsgi_app = ProxyFix(app.wsgi_app, **options)


def security_headers(response: Response) -> Response:
    """Add the headers every response carries; a view that set its own keeps it."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # A view with a policy of its own (the mail catcher's framed mail) decides framing too.
    if "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Frame-Options"] = "DENY"
    return response
