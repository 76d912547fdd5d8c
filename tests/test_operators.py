"""operators: accounts, passwords and bearer tokens."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from newsletter import operators
from newsletter.addresses import InvalidEmail
from newsletter.models import Operator, OperatorToken

PASSWORD = "correct horse battery"


@pytest.fixture
def operator(session) -> Operator:
    return operators.create_operator(session, "Desk@Example.org", PASSWORD)


def test_create_keeps_only_an_scrypt_hash(operator):
    assert operator.email == "desk@example.org"
    assert operator.password_hash.startswith("scrypt:")
    assert PASSWORD not in operator.password_hash


def test_passwords_need_twelve_characters(session):
    with pytest.raises(operators.WeakPassword):
        operators.create_operator(session, "desk@example.org", "elevenchars")
    assert operators.create_operator(session, "desk@example.org", "twelve chars")


def test_one_operator_per_email_whatever_its_case(session, operator):
    with pytest.raises(operators.OperatorExists):
        operators.create_operator(session, "DESK@example.org", PASSWORD)


def test_operator_emails_must_be_addresses(session):
    with pytest.raises(InvalidEmail):
        operators.create_operator(session, "desk", PASSWORD)


def test_check_password(session, operator):
    assert operators.check_password(session, "desk@EXAMPLE.org", PASSWORD) is operator
    with pytest.raises(operators.InvalidCredentials):
        operators.check_password(session, "desk@example.org", PASSWORD + "!")
    with pytest.raises(operators.InvalidCredentials):
        operators.check_password(session, "nobody@example.org", PASSWORD)
    with pytest.raises(operators.InvalidCredentials):
        operators.check_password(session, "not an address", PASSWORD)


def test_by_email(session, operator):
    assert operators.by_email(session, "desk@example.org") is operator
    with pytest.raises(operators.UnknownOperator):
        operators.by_email(session, "nobody@example.org")


def test_tokens_are_long_random_and_stored_hashed(session, operator):
    token = operators.issue_token(session, operator)
    other = operators.issue_token(session, operator)
    assert token.startswith("nlop_") and len(token) == len("nlop_") + 43 and token != other
    stored = session.scalars(select(OperatorToken.token_hash)).all()
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert token not in stored


def test_a_token_names_its_operator_and_notes_its_use(session, operator):
    token = operators.issue_token(session, operator)
    now = datetime(2025, 11, 11, 9, tzinfo=timezone.utc)
    assert operators.operator_for_token(session, token, now) is operator
    row = session.scalar(select(OperatorToken))
    assert row.last_used_at == now
    # Within a minute nothing is written again.
    operators.operator_for_token(session, token, now + timedelta(seconds=30))
    assert row.last_used_at == now
    operators.operator_for_token(session, token, now + timedelta(minutes=2))
    assert row.last_used_at == now + timedelta(minutes=2)


@pytest.mark.parametrize("raw", ["", "nlop_", "nlop_unknown", "Bearer x", None, "x" * 500])
def test_unknown_tokens_are_refused(session, operator, raw):
    operators.issue_token(session, operator)
    with pytest.raises(operators.InvalidToken):
        operators.operator_for_token(session, raw)


def test_a_revoked_token_is_refused(session, operator):
    token = operators.issue_token(session, operator)
    kept = operators.issue_token(session, operator)
    assert operators.revoke_token(session, token) is operator
    with pytest.raises(operators.InvalidToken):
        operators.operator_for_token(session, token)
    with pytest.raises(operators.InvalidToken):
        operators.revoke_token(session, token)
    assert operators.operator_for_token(session, kept) is operator


def test_revoke_all_tokens(session, operator):
    tokens = [operators.issue_token(session, operator) for _ in range(3)]
    operators.revoke_token(session, tokens[0])
    assert operators.revoke_all_tokens(session, operator) == 2
    for token in tokens:
        with pytest.raises(operators.InvalidToken):
            operators.operator_for_token(session, token)
