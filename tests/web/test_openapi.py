"""GET /api/v1/openapi.json: a valid OpenAPI 3.1 document naming every /api/v1 route the
app has, with the shapes the routes really answer."""
from __future__ import annotations

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from newsletter import db
from newsletter.web import openapi
from tests.factories import make_article
from tests.support.console import bearer


@pytest.fixture
def document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.json


def check(document: dict, schema_name: str, instance) -> None:
    """Validate `instance` against a schema of the document's components."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    OAS31Validator(schema).validate(instance)


def api_operations(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = openapi.openapi_path(rule)[0]
            found |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_it_is_a_valid_openapi_3_1_document(document):
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_api_route_is_described(app, document):
    assert openapi.undocumented(app) == []
    listed = {(path, method) for path, item in document["paths"].items() for method in item}
    assert listed == api_operations(app)
    assert not [op["operationId"] for item in document["paths"].values() for op in item.values()
                if op.get("x-undocumented")]
    assert {"/api/v1/editions", "/api/v1/editions/{edition_id}", "/api/v1/editions/{edition_id}/send",
            "/api/v1/articles/{slug}", "/api/v1/signups", "/api/v1/openapi.json"} <= set(document["paths"])


def test_a_route_without_a_description_is_caught(app):
    app.add_url_rule("/api/v1/brand-new/<int:thing_id>", "brand_new", lambda thing_id: "", methods=["GET", "PUT"])
    assert openapi.undocumented(app) == ["GET /api/v1/brand-new/<int:thing_id>",
                                         "PUT /api/v1/brand-new/<int:thing_id>"]
    document = openapi.openapi_document(app)
    operation = document["paths"]["/api/v1/brand-new/{thing_id}"]["get"]
    assert operation["x-undocumented"] is True
    assert operation["parameters"] == [{"name": "thing_id", "in": "path", "required": True,
                                        "schema": {"type": "integer", "minimum": 0}}]
    validate(document)  # still a valid document meanwhile


def test_operator_routes_ask_for_the_bearer_token_and_public_ones_do_not(document):
    assert document["components"]["securitySchemes"]["operatorToken"] == {
        "type": "http", "scheme": "bearer", "description": "A token from `newsletter operator token EMAIL`."}
    secured = {path for path, item in document["paths"].items() for op in item.values() if "security" in op}
    assert {p for p in document["paths"] if p.startswith("/api/v1/editions")} <= secured
    assert {"/api/v1/suppressions/reports", "/api/v1/subscribers/counts"} <= secured
    assert not secured & {"/api/v1/articles/{slug}", "/api/v1/signups", "/api/v1/openapi.json"}
    for path in secured:
        for operation in document["paths"][path].values():
            assert "401" in operation["responses"]


def test_the_schemas_match_what_the_routes_answer(app, client, document):
    auth = bearer(app)
    with app.app_context():
        make_article(db.session(), slug="talks", headline="Talks end")
        db.session().commit()
    check(document, "Article", client.get("/api/v1/articles/talks").json)
    created = client.post("/api/v1/editions", json={"articles": ["talks"]}, headers=auth)
    check(document, "EditionCreated", created.json)
    check(document, "Progress", client.get(f"/api/v1/editions/{created.json['id']}", headers=auth).json)
    check(document, "SubscriberCounts", client.get("/api/v1/subscribers/counts", headers=auth).json)
    check(document, "Error", client.post("/api/v1/editions", json={"articles": ["nope"]}, headers=auth).json)
    check(document, "Error", client.get("/api/v1/editions/999", headers=auth).json)
    check(document, "Error", client.get("/api/v1/editions/1").json)  # 401
    sent = client.post(f"/api/v1/editions/{created.json['id']}/send", headers=auth)
    OAS31Validator({"components": document["components"]} | document["paths"][
        "/api/v1/editions/{edition_id}/send"]["post"]["responses"]["202"]["content"]["application/json"]["schema"]
    ).validate(sent.json)
    if app.extensions.get("celery") is not None:
        app.extensions["celery"].close()


def test_the_document_needs_no_token(app):
    assert app.test_client().get("/api/v1/openapi.json").status_code == 200


def test_a_path_with_several_parameters():
    from werkzeug.routing import Rule

    path, parameters = openapi.openapi_path(Rule("/api/v1/a/<slug>/b/<int(min=1):n>/<path:rest>"))
    assert path == "/api/v1/a/{slug}/b/{n}/{rest}"
    assert [(p["name"], p["schema"]["type"]) for p in parameters] == [("slug", "string"), ("n", "integer"),
                                                                      ("rest", "string")]

