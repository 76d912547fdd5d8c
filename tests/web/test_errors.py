"""Errors answer in the caller's language: JSON under /api/, an HTML page elsewhere."""
from __future__ import annotations

from tests.web.markup import parse


def json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_unknown_article_is_an_html_404(client):
    response = client.get("/articles/no-such-story")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = parse(response.data)
    assert page.find("h1").text() == "We can’t find that page"
    assert page.find("main").find("a").attrs["href"] == "/"


def test_unknown_page_is_an_html_404(client):
    response = client.get("/no/such/page")

    assert response.status_code == 404 and response.mimetype == "text/html"


def test_unknown_api_route_is_a_json_404(client):
    json_error(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_on_the_api_is_a_json_405(client):
    response = client.post("/api/v1/articles/anything")

    json_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_wrong_method_on_a_page_is_an_html_405(client):
    response = client.post("/")

    assert response.status_code == 405 and response.mimetype == "text/html"
    assert "GET" in response.headers["Allow"]
    assert parse(response.data).find("h1").text() == "Method Not Allowed"


def test_crash_under_the_api_is_a_json_500(crashing_app, caplog):
    response = crashing_app.test_client().get("/api/v1/boom")

    error = json_error(response, 500, "internal_server_error")
    assert "secret internals" not in error["message"]
    assert "secret internals" in caplog.text


def test_crash_on_a_page_is_an_html_500(crashing_app):
    response = crashing_app.test_client().get("/boom")

    assert response.status_code == 500 and response.mimetype == "text/html"
    assert b"secret internals" not in response.data
    assert parse(response.data).find("h1").text() == "Something went wrong on our side"
