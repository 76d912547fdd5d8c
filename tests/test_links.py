"""links: signed per-subscriber links and their tampering, confirmation links."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from newsletter import links
from newsletter.addresses import email_hash
from newsletter.links import InvalidLink, make_token, subscriber_for_token
from newsletter.models import Subscriber

SECRET = "test-secret-key"


@pytest.fixture
def reader(session) -> Subscriber:
    row = Subscriber(email="reader@example.org", email_hash=email_hash("reader@example.org"),
                     token_key="0123456789abcdef0123456789abcdef")
    session.add(row)
    session.flush()
    return row


def test_the_token_is_the_id_and_128_bits_of_hmac(reader):
    token = make_token(reader, "unsubscribe", SECRET)
    message = f"unsubscribe:{reader.id}:{reader.token_key}".encode()
    expected = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()[:32]
    assert token == f"{reader.id}.{expected}"


@pytest.mark.parametrize("purpose", ["unsubscribe", "manage"])
def test_a_token_leads_back_to_its_subscriber(session, reader, purpose):
    token = make_token(reader, purpose, SECRET)
    assert subscriber_for_token(session, token, purpose, SECRET) is reader


def test_a_token_works_for_its_own_purpose_only(session, reader):
    with pytest.raises(InvalidLink):
        subscriber_for_token(session, make_token(reader, "unsubscribe", SECRET), "manage", SECRET)
    with pytest.raises(InvalidLink):
        subscriber_for_token(session, make_token(reader, "manage", SECRET), "unsubscribe", SECRET)


def test_another_secret_key_makes_other_tokens(session, reader):
    with pytest.raises(InvalidLink):
        subscriber_for_token(session, make_token(reader, "manage", "another key"), "manage", SECRET)


def test_a_new_token_key_revokes_old_links(session, reader):
    old = make_token(reader, "unsubscribe", SECRET)
    reader.token_key = "f" * 32
    with pytest.raises(InvalidLink):
        subscriber_for_token(session, old, "unsubscribe", SECRET)


def test_a_token_cannot_be_moved_to_another_subscriber(session, reader):
    other = Subscriber(email="other@example.org", email_hash=email_hash("other@example.org"),
                       token_key=reader.token_key)  # even with the same key
    session.add(other)
    session.flush()
    mac = make_token(reader, "unsubscribe", SECRET).split(".")[1]
    with pytest.raises(InvalidLink, match="signature"):
        subscriber_for_token(session, f"{other.id}.{mac}", "unsubscribe", SECRET)


def tampered(token: str) -> list[str]:
    ident, mac = token.split(".")
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    return [
        f"{ident}.{flipped}", f"{ident}.{mac[:-1]}", f"{ident}.{mac}0", f"{ident}.{mac.upper()}",
        f"{ident}{mac}", f"{ident}..{mac}", f".{mac}", f"{ident}.", f"0{ident}.{mac}",
        f"-{ident}.{mac}", f"{ident}.{mac} ", f" {ident}.{mac}", f"{ident}.{mac}\n",
        f"١.{mac}",  # an Arabic-Indic digit one: int() would take it
        f"{ident}.{'0' * 32}", "", ".", "x", "1.2", f"{'9' * 40}.{mac}", f"{ident}.{mac}/../x",
    ]


def test_tampered_tokens_are_refused(session, reader):
    token = make_token(reader, "unsubscribe", SECRET)
    for bad in tampered(token):
        with pytest.raises(InvalidLink):
            subscriber_for_token(session, bad, "unsubscribe", SECRET)


def test_a_token_of_an_unknown_subscriber_is_refused(session, reader):
    mac = make_token(reader, "unsubscribe", SECRET).split(".")[1]
    with pytest.raises(InvalidLink, match="no such"):
        subscriber_for_token(session, f"{reader.id + 1000}.{mac}", "unsubscribe", SECRET)


def test_a_token_of_an_erased_subscriber_is_refused(session, reader):
    token = make_token(reader, "manage", SECRET)
    session.delete(reader)
    session.flush()
    with pytest.raises(InvalidLink):
        subscriber_for_token(session, token, "manage", SECRET)


def test_non_strings_are_refused(session, reader):
    with pytest.raises(InvalidLink):
        subscriber_for_token(session, None, "manage", SECRET)  # type: ignore[arg-type]


def test_unknown_purposes_are_a_programming_error(reader):
    with pytest.raises(ValueError):
        make_token(reader, "delete", SECRET)


def test_urls(reader):
    base = "https://news.example.org/"
    assert links.unsubscribe_url(base, reader, SECRET) == (
        f"https://news.example.org/newsletter/unsubscribe/{make_token(reader, 'unsubscribe', SECRET)}")
    assert links.manage_url(base, reader, SECRET) == (
        f"https://news.example.org/newsletter/manage/{make_token(reader, 'manage', SECRET)}")
    assert links.confirm_url("http://127.0.0.1:5000", "abc_-XYZ") == (
        "http://127.0.0.1:5000/newsletter/confirm/abc_-XYZ")
