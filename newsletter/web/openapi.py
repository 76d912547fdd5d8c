"""GET /api/v1/openapi.json: the OpenAPI 3.1 description of every /api/v1 route.

The paths come from the app's URL map, so the document lists each route that exists;
what each operation takes and answers is written by hand in
newsletter.web.openapi_descriptions, the one place to describe a route. A route
without an entry still appears, marked `x-undocumented`, and tests/web/test_openapi.py
fails until it has one.
"""
from __future__ import annotations

import re

from flask import Blueprint, Flask, current_app, jsonify
from werkzeug.routing import Rule

from newsletter.web.openapi_descriptions import INFO, OPERATIONS, RESPONSES, SCHEMAS, SECURITY_SCHEMES

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")
PREFIX = "/api/v1/"
_PARAMETER = re.compile(r"<(?:(?P<converter>[a-zA-Z_]\w*)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_TYPES = {"int": {"type": "integer", "minimum": 0}, "float": {"type": "number"}}


@bp.get("/openapi.json")
def document():
    return jsonify(openapi_document(current_app))


def openapi_document(app: Flask) -> dict:
    """The whole document for the routes `app` has now."""
    paths: dict[str, dict] = {}
    for rule in api_rules(app):
        path, parameters = openapi_path(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operation = dict(OPERATIONS.get(rule.endpoint, {}).get(method.lower()) or _undocumented(rule))
            operation["operationId"] = f"{rule.endpoint}.{method.lower()}"
            if parameters:
                operation["parameters"] = parameters + operation.get("parameters", [])
            paths.setdefault(path, {})[method.lower()] = operation
    return {"openapi": "3.1.0", "info": INFO, "paths": dict(sorted(paths.items())),
            "components": {"schemas": SCHEMAS, "responses": RESPONSES,
                           "securitySchemes": SECURITY_SCHEMES}}


def api_rules(app: Flask) -> list[Rule]:
    return sorted((r for r in app.url_map.iter_rules() if r.rule.startswith(PREFIX)), key=lambda r: r.rule)


def undocumented(app: Flask) -> list[str]:
    """"METHOD /path" of each /api/v1 operation that OPERATIONS does not describe."""
    return [f"{method} {rule.rule}" for rule in api_rules(app)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
            if method.lower() not in OPERATIONS.get(rule.endpoint, {})]


def openapi_path(rule: Rule) -> tuple[str, list[dict]]:
    """`/api/v1/editions/<int:edition_id>` → `/api/v1/editions/{edition_id}` and its parameter."""
    parameters = [{"name": m["name"], "in": "path", "required": True,
                   "schema": _TYPES.get(m["converter"] or "", {"type": "string"})}
                  for m in _PARAMETER.finditer(rule.rule)]
    return _PARAMETER.sub(lambda m: "{" + m["name"] + "}", rule.rule), parameters


def _undocumented(rule: Rule) -> dict:
    return {"summary": f"{rule.endpoint} (not described yet)", "x-undocumented": True,
            "responses": {"default": {"description": "Not described yet."}}}
