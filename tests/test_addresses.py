"""addresses: validation, normalisation and the hash that suppression and erasure keep."""
from __future__ import annotations

import hashlib

import pytest

from newsletter.addresses import InvalidEmail, email_hash, for_transport, normalise


@pytest.mark.parametrize("raw, normalised", [
    ("reader@example.org", "reader@example.org"),
    ("Reader@Example.ORG", "Reader@example.org"),       # the domain only is case-folded
    ("  reader@example.org\t", "reader@example.org"),  # pasted with blanks around
    ("josé@bücher.example", "josé@bücher.example"),    # SMTPUTF8 local part, IDN domain
    ("user@xn--bcher-kva.example", "user@bücher.example"),
    ("用户@例子.广告", "用户@例子.广告"),
    ("first.last+news@sub.example.co.uk", "first.last+news@sub.example.co.uk"),
])
def test_valid_addresses_are_normalised(raw, normalised):
    assert normalise(raw) == normalised


@pytest.mark.parametrize("raw", [
    "", "   ", "reader", "reader@", "@example.org", "reader@@example.org",
    "reader@localhost", "reader@newsletter.test", "reader@example", '"two words"@example.org',
    "reader @example.org", "reader@exa mple.org", "reader@[127.0.0.1]",
])
def test_invalid_addresses_are_refused(raw):
    with pytest.raises(InvalidEmail):
        normalise(raw)


@pytest.mark.parametrize("raw", [
    "reader@example.org\r\nBcc: victim@example.org", "reader@example.org\n",
    "\rreader@example.org", "reader\0@example.org",
])
def test_line_breaks_and_nul_are_refused_before_parsing(raw):
    with pytest.raises(InvalidEmail, match="single line"):
        normalise(raw)


def test_overlong_input_is_refused_before_parsing():
    longest = f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 57}.org"
    assert len(longest) == 254 and normalise(longest) == longest
    with pytest.raises(InvalidEmail, match="254"):
        normalise("a" + longest)
    with pytest.raises(InvalidEmail, match="254"):
        normalise("x" * 100_000)


def test_non_strings_are_refused():
    with pytest.raises(InvalidEmail):
        normalise(b"reader@example.org")  # type: ignore[arg-type]


def test_messages_are_one_user_facing_sentence():
    for raw in ["nope", "a\nb", "x" * 300, ""]:
        with pytest.raises(InvalidEmail) as caught:
            normalise(raw)
        message = str(caught.value)
        assert message[0].isupper() and message.endswith(".") and message.count(". ") == 0


def test_invalid_email_is_a_value_error():
    assert issubclass(InvalidEmail, ValueError)


def test_hash_is_sha256_of_the_lowercased_address():
    expected = hashlib.sha256("reader@example.org".encode()).hexdigest()
    assert email_hash("reader@example.org") == expected
    assert len(expected) == 64


def test_case_variants_hash_alike():
    assert email_hash(normalise("Reader@EXAMPLE.org")) == email_hash(normalise("reader@example.org"))
    assert email_hash(normalise("user@XN--BCHER-KVA.example")) == email_hash(normalise("USER@bücher.example"))


def test_different_addresses_hash_apart():
    assert email_hash("a@example.org") != email_hash("b@example.org")


def test_for_transport_uses_punycode_when_the_local_part_is_ascii():
    assert for_transport("user@bücher.example") == "user@xn--bcher-kva.example"
    assert for_transport("josé@bücher.example") == "josé@bücher.example"  # needs SMTPUTF8
    assert for_transport("reader@example.org") == "reader@example.org"
