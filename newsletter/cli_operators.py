"""`newsletter operator …`: create operators, issue and revoke their API tokens.
Shims over newsletter.operators."""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from newsletter import addresses, db, operators


@click.group("operator", help="Operators: newsroom staff who use the console and the JSON API.")
def operator_group() -> None:
    pass


@operator_group.command("create", help="Create an operator. The password is the first line of "
                        "standard input when that is not a terminal; else it is asked twice.")
@click.argument("email")
@with_appcontext
def create_command(email: str) -> None:
    password = _read_password()
    session = db.session()
    try:
        operator = operators.create_operator(session, email, password)
    except (operators.OperatorError, addresses.InvalidEmail) as e:
        raise click.ClickException(str(e)) from None
    session.commit()
    click.echo(f"operator {operator.email} created")


@operator_group.command("token", help="Print a new bearer token for the JSON API (last line "
                        "of standard output; it is shown only once).")
@click.argument("email")
@with_appcontext
def token_command(email: str) -> None:
    session = db.session()
    operator = _operator(email)
    token = operators.issue_token(session, operator)
    session.commit()
    click.echo(f"A new API token for {operator.email}; it is shown only this once.", err=True)
    click.echo(token)


@operator_group.command("revoke", help="Revoke a bearer token (`-`: read it from standard input).")
@click.argument("token")
@with_appcontext
def revoke_command(token: str) -> None:
    if token == "-":
        token = sys.stdin.readline().strip()
    session = db.session()
    try:
        operator = operators.revoke_token(session, token)
    except operators.InvalidToken as e:
        raise click.ClickException(str(e)) from None
    session.commit()
    click.echo(f"token of {operator.email} revoked")


@operator_group.command("revoke-all", help="Revoke every bearer token of an operator.")
@click.argument("email")
@with_appcontext
def revoke_all_command(email: str) -> None:
    session = db.session()
    operator = _operator(email)
    revoked = operators.revoke_all_tokens(session, operator)
    session.commit()
    click.echo(f"{revoked} tokens of {operator.email} revoked")


def _operator(email: str):
    try:
        return operators.by_email(db.session(), email)
    except operators.UnknownOperator as e:
        raise click.ClickException(str(e)) from None


def _read_password() -> str:
    stdin = sys.stdin
    if stdin.isatty():
        return click.prompt("Password", hide_input=True,
                            confirmation_prompt="Repeat the password")
    password = stdin.readline().rstrip("\r\n")
    if not password:
        raise click.ClickException("No password: send it as the first line of standard input.")
    return password
