"""The JSON API under /api/v1."""
from __future__ import annotations

from flask import Blueprint, abort, jsonify

from newsletter import articles, db

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/articles/<slug>")
def article(slug: str):
    try:
        story = articles.get(db.session(), slug)
    except articles.ArticleNotFound:
        abort(404, description=f"No article has the slug {slug!r}.")
    return jsonify(articles.as_json(story))
