"""Error pages: HTML for people, JSON under /api/."""
from flask import Flask


def init_app(app: Flask) -> None:
    pass
