"""Fixtures for the web layer."""
from __future__ import annotations

import pytest

from tests.support.console import make_operator, sign_in


@pytest.fixture
def crashing_app(app):
    """The app with a route under /api/ and one page that fail, errors not propagated."""
    def boom():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/v1/boom", "api_boom", boom)
    app.add_url_rule("/boom", "page_boom", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


@pytest.fixture
def signed_in(app, client):
    """`client`, signed in to the console through its form as a new operator."""
    make_operator(app)
    assert sign_in(client).status_code == 303
    return client
