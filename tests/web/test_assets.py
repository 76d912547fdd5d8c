"""The stylesheet: served by us under a content-hash URL, kept by browsers for a year."""
from __future__ import annotations

import re

from tests.web.markup import parse


def stylesheet_url(client) -> str:
    return parse(client.get("/terms").data).find("link", rel="stylesheet").attrs["href"]


def test_pages_link_the_stylesheet_by_content_hash(client):
    assert re.fullmatch(r"/assets/site\.css\?v=[0-9a-f]{12}", stylesheet_url(client))


def test_the_hashed_url_is_cached_for_a_year(client):
    response = client.get(stylesheet_url(client))

    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert response.cache_control.max_age == 365 * 24 * 3600
    assert response.cache_control.immutable
    assert b"prefers-color-scheme: dark" in response.data
    response.close()


def test_a_stale_hash_is_not_cached(client):
    response = client.get("/assets/site.css?v=000000000000")

    assert response.status_code == 200
    assert response.cache_control.max_age == 0
    assert not response.cache_control.immutable
    response.close()


def test_unknown_or_escaping_asset_paths_are_404(client):
    assert client.get("/assets/nope.css").status_code == 404
    assert client.get("/assets/../base.html").status_code == 404
    assert client.get("/assets/..%2fbase.html").status_code == 404
