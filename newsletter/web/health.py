"""`GET /healthz`: the process answers. No database, no Redis, no templates.

For load balancers and as the benchmark's baseline: the cheapest request the app serves.
"""
from __future__ import annotations

from flask import Blueprint, Response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return Response("ok", mimetype="text/plain")
