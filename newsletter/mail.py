"""Outgoing mail: the SMTP sender and its twin, the built-in mail catcher."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    pass
