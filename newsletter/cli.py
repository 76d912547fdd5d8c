"""The `newsletter` command line. Commands are shims over domain functions.

`main` is a FlaskGroup, so every command runs inside the app context and a `.env`
file is read first.
"""
from __future__ import annotations

import click
from alembic.util import exc as alembic_errors
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from newsletter import db


def _create_app(*_args) -> Flask:
    from newsletter import create_app

    return create_app()


main = FlaskGroup(name="newsletter", create_app=_create_app, add_default_commands=False,
                  add_version_option=False, help="Run and operate the Daily Edition service.")


@click.group("db", help="The database schema.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Create or migrate the schema (Alembic).")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    try:
        db.upgrade(current_app, revision)
    except alembic_errors.CommandError as error:  # an unknown revision, say: a sentence, not a traceback
        raise click.ClickException(str(error)) from error
    click.echo(f"database at {revision}")


@click.command("dev", help="Run the web server, a worker and beat in this terminal, on embedded "
                      "Redis and the mail catcher unless NEWSLETTER_REDIS_URL / SMTP_URL are set.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the web server listens on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@with_appcontext
def dev_command(host: str, port: int) -> None:
    from newsletter import devstack

    try:
        status = devstack.run(current_app._get_current_object(), host, port)
    except devstack.DevStackError as exc:
        raise click.ClickException(str(exc)) from exc
    raise SystemExit(status)


def init_app(app: Flask) -> None:
    from newsletter import cli_editions, cli_operators, cli_prompts, cli_stripe, cli_subscribers, ingest

    app.cli.add_command(db_group)
    app.cli.add_command(ingest.ingest_command)
    app.cli.add_command(dev_command)
    app.cli.add_command(cli_subscribers.subscribers_group)
    app.cli.add_command(cli_operators.operator_group)
    app.cli.add_command(cli_stripe.stripe_group)
    app.cli.add_command(cli_editions.edition_group)
    app.cli.add_command(cli_prompts.prompts_group)
