"""Headers every response carries (newsletter.web.security_headers)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/", "/articles/missing", "/api/v1/articles/missing",
                                  "/api/v1/nothing", "/terms"])
def test_security_headers_on_every_response(client, path):
    headers = client.get(path).headers

    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert headers["X-Frame-Options"] == "DENY"
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert "unsafe-inline" not in headers["Content-Security-Policy"]


def test_security_headers_on_errors_that_crash(crashing_app):
    response = crashing_app.test_client().get("/boom")

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_a_view_with_its_own_policy_keeps_it(app):
    app.add_url_rule("/framed", "framed", lambda: ("ok", 200, {
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'"}))

    headers = app.test_client().get("/framed").headers

    assert headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'self'"
    assert "X-Frame-Options" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"
