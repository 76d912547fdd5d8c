"""`newsletter operator create|token|revoke|revoke-all` through the command line."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest

from newsletter import db, operators
from tests.support.workers import app_env

PASSWORD = "a long enough password"


def invoke(runner, *args, input=None):
    return runner.invoke(args=["operator", *args], input=input)


def create(runner, email="desk@example.org", password=PASSWORD):
    return invoke(runner, "create", email, input=password + "\n")


def check(app, email, password):
    with app.app_context():
        return operators.check_password(db.session(), email, password)


def operator_of(app, token):
    with app.app_context():
        return operators.operator_for_token(db.session(), token).email


def test_create_reads_the_password_from_standard_input(runner, app):
    result = create(runner, "Desk@Example.org", PASSWORD + "  ")
    assert result.exit_code == 0, result.output
    assert result.stdout == "operator desk@example.org created\n"
    # Only the line end is taken off: spaces belong to the password.
    assert check(app, "desk@example.org", PASSWORD + "  ").email == "desk@example.org"


def test_only_the_first_line_is_the_password(runner, app):
    assert invoke(runner, "create", "desk@example.org",
                  input=PASSWORD + "\r\nsomething else\n").exit_code == 0
    assert check(app, "desk@example.org", PASSWORD)


@pytest.mark.parametrize("password, message", [
    ("short", "at least 12 characters"),
    ("", "No password"),
])
def test_create_refuses_weak_or_missing_passwords(runner, app, password, message):
    result = invoke(runner, "create", "desk@example.org", input=password)
    assert result.exit_code == 1 and message in result.stderr


def test_create_refuses_a_second_operator_with_the_email(runner, app):
    create(runner)
    result = create(runner, "DESK@example.org")
    assert result.exit_code == 1 and "exists already" in result.stderr


def test_create_refuses_what_is_not_an_address(runner, app):
    result = create(runner, "desk")
    assert result.exit_code == 1 and "valid email address" in result.stderr


def test_token_prints_only_the_token_on_standard_output(runner, app):
    create(runner)
    result = invoke(runner, "token", "desk@example.org")
    assert result.exit_code == 0, result.output
    token = result.stdout.splitlines()[-1]
    assert result.stdout == token + "\n" and token.startswith("nlop_")
    assert "shown only this once" in result.stderr
    assert operator_of(app, token) == "desk@example.org"


def test_token_for_an_unknown_operator_fails_clearly(runner, app):
    result = invoke(runner, "token", "nobody@example.org")
    assert result.exit_code == 1 and result.stdout == ""
    assert "No operator has the email nobody@example.org" in result.stderr


def test_revoke_a_token_given_on_standard_input(runner, app):
    create(runner)
    token = invoke(runner, "token", "desk@example.org").stdout.strip()
    kept = invoke(runner, "token", "desk@example.org").stdout.strip()
    result = invoke(runner, "revoke", "-", input=token + "\n")
    assert result.exit_code == 0 and result.stdout == "token of desk@example.org revoked\n"
    with pytest.raises(operators.InvalidToken):
        operator_of(app, token)
    assert operator_of(app, kept) == "desk@example.org"
    again = invoke(runner, "revoke", token)
    assert again.exit_code == 1 and "unknown or revoked" in again.stderr


def test_revoke_all(runner, app):
    create(runner)
    tokens = [invoke(runner, "token", "desk@example.org").stdout.strip() for _ in range(2)]
    result = invoke(runner, "revoke-all", "desk@example.org")
    assert result.exit_code == 0 and result.stdout == "2 tokens of desk@example.org revoked\n"
    for token in tokens:
        with pytest.raises(operators.InvalidToken):
            operator_of(app, token)


# ---------------------------------------------------------------- on a terminal

def test_create_on_a_terminal_asks_twice_without_echo(app, app_config, tmp_path):
    """The real command on a pseudo-terminal: hidden input, asked twice, must match."""
    master, slave = os.openpty()
    cmd = [sys.executable, "-c", "from newsletter.cli import main; main()",
           "operator", "create", "desk@example.org"]
    proc = subprocess.Popen(cmd, env=app_env(app_config), cwd=tmp_path, stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        screen = expect(master, "Password: ")
        os.write(master, (PASSWORD + "\n").encode())
        screen += expect(master, "Repeat the password: ")
        os.write(master, (PASSWORD + "\n").encode())
        screen += expect(master, "created")
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    assert PASSWORD not in screen  # not echoed
    assert check(app, "desk@example.org", PASSWORD)


def expect(fd: int, text: str, timeout: float = 30) -> str:
    seen = b""
    end = time.monotonic() + timeout
    while text.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], max(0, end - time.monotonic()))
        if not ready:
            raise TimeoutError(f"waited for {text!r}, saw {seen!r}")
        seen += os.read(fd, 1024)
    return seen.decode()
