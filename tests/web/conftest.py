"""Fixtures for the web layer."""
from __future__ import annotations

import pytest


@pytest.fixture
def crashing_app(app):
    """The app with a route under /api/ and one page that fail, errors not propagated."""
    def boom():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/v1/boom", "api_boom", boom)
    app.add_url_rule("/boom", "page_boom", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app
