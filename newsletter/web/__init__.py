"""Blueprints. Views are shims: parse, one domain call, render or redirect."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from newsletter.web import api, errors, reader

    app.register_blueprint(reader.bp)
    app.register_blueprint(api.bp)
    errors.init_app(app)
