"""The Daily Edition, Community membership and membership prompts for one newsroom.

`create_app` is the only way to get an application: defaults, then the NEWSLETTER_*
environment, then the test mapping; each part wires itself with `init_app(app)`.
"""
from __future__ import annotations

from flask import Flask


def create_app(test_config: dict | None = None) -> Flask:
    """Build the Flask application for the web, the workers and the command line."""
    from newsletter import config, db, mail, queue, resources
    from newsletter.web import init_app as init_web

    app = Flask(__name__, instance_relative_config=True,
                template_folder=str(resources.templates_dir()), static_folder=None)
    config.load(app, test_config)
    db.init_app(app)
    queue.init_app(app)
    mail.init_app(app)
    init_web(app)
    from newsletter import cli
    cli.init_app(app)
    return app
