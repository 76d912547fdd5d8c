"""Error pages: JSON `{"error": {"code", "message"}}` under /api/, HTML elsewhere."""
from __future__ import annotations

import re

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException


def init_app(app: Flask) -> None:
    # Flask hands unhandled exceptions here too, as InternalServerError (500).
    app.register_error_handler(HTTPException, handle_http_error)


def handle_http_error(error: HTTPException):
    """Answer an HTTP error in the form the caller reads: JSON for the API, else a page."""
    headers = _kept_headers(error)
    if request.path.startswith("/api/"):
        body = {"error": {"code": error_code(error), "message": error.description}}
        return jsonify(body), error.code, headers
    templates = [f"errors/{error.code}.html", "errors/error.html"]
    return render_template(templates, error=error), error.code, headers


def error_code(error: HTTPException) -> str:
    """`Method Not Allowed` -> `method_not_allowed`."""
    return re.sub(r"[^a-z0-9]+", "_", error.name.lower()).strip("_")


def _kept_headers(error: HTTPException) -> list[tuple[str, str]]:
    # Allow (405), Retry-After (429/503) and the like must survive; the body type is ours.
    return [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
