"""GET /api/v1/articles/<slug>: the shape CONTRACT.md promises."""
from __future__ import annotations

from datetime import datetime, timezone

from tests.factories import image, make_article, paragraph

CONTRACT_KEYS = {"slug", "headline", "byline", "published_at", "paragraphs", "images", "notes"}


def test_article_json_matches_the_contract(client, session):
    make_article(session, slug="syria-talks", headline="Syria wants a deal", byline="Jane Doe",
                 body=[paragraph("One."), image("A parade.", "AP Photo/Leo Correa"), paragraph("Two.")],
                 notes=["Agencies contributed to this report."],
                 published_at=datetime(2025, 11, 11, 14, 5, tzinfo=timezone.utc))
    session.commit()

    response = client.get("/api/v1/articles/syria-talks")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    data = response.get_json()
    # CONTRACT.md allows additions; every promised key must be there with its type.
    assert CONTRACT_KEYS <= data.keys()
    assert data["slug"] == "syria-talks"
    assert data["headline"] == "Syria wants a deal"
    assert data["byline"] == "Jane Doe"
    assert data["published_at"] == "2025-11-11T14:05:00+00:00"
    assert datetime.fromisoformat(data["published_at"]).tzinfo is not None
    assert data["paragraphs"] == ["One.", "Two."]
    assert data["images"] == [{"caption": "A parade.", "credit": "AP Photo/Leo Correa"}]
    assert data["notes"] == ["Agencies contributed to this report."]


def test_article_json_types(client, session):
    make_article(session, slug="plain", body=[paragraph("Only.")], notes=[])
    session.commit()

    data = client.get("/api/v1/articles/plain").get_json()

    for key in ("slug", "headline", "byline", "published_at"):
        assert isinstance(data[key], str), key
    assert all(isinstance(p, str) for p in data["paragraphs"])
    assert data["images"] == [] and data["notes"] == []


def test_text_is_returned_as_written(client, session):
    make_article(session, slug="raw", headline="<b>Bold</b> & “quoted”")
    session.commit()

    data = client.get("/api/v1/articles/raw").get_json()

    assert data["headline"] == "<b>Bold</b> & “quoted”"


def test_unknown_slug_is_a_json_404(client):
    response = client.get("/api/v1/articles/no-such-story")

    assert response.status_code == 404
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == "not_found"
    assert "no-such-story" in error["message"]
    assert set(response.get_json()) == {"error"} and set(error) == {"code", "message"}
