"""Our own stylesheet and icons, served from templates/assets/ under a content-hash URL."""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache

from flask import Blueprint, abort, request, send_from_directory, url_for
from werkzeug.security import safe_join

from newsletter import resources

bp = Blueprint("assets", __name__, url_prefix="/assets")
ONE_YEAR = 365 * 24 * 3600


def folder() -> str:
    return str(resources.templates_dir() / "assets")


def asset_url(filename: str) -> str:
    """The URL of an asset with its content hash, so an edited file gets a new URL."""
    return url_for("assets.serve", filename=filename, v=digest(filename))


def digest(filename: str) -> str:
    path = safe_join(folder(), filename)
    if path is None or not os.path.isfile(path):
        raise FileNotFoundError(filename)
    stat = os.stat(path)
    # Keyed on mtime and size so an edit in development shows without a restart.
    return _digest(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _digest(path: str, _mtime_ns: int, _size: int) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


@bp.get("/<path:filename>")
def serve(filename: str):
    try:
        current = digest(filename)
    except FileNotFoundError:
        abort(404)
    # Only the URL naming this exact content may be kept for a year.
    fresh = request.args.get("v") == current
    response = send_from_directory(folder(), filename, max_age=ONE_YEAR if fresh else 0)
    if fresh:
        response.cache_control.immutable = True
    return response
