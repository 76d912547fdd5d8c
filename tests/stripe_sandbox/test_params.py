"""Bracket-form parsing and schema checks, without a server."""
from __future__ import annotations

import pytest

from newsletter.stripe_sandbox.errors import StripeError
from newsletter.stripe_sandbox.params import (
    BOOL, INT, METADATA, STR, merge_metadata, one_of, parse_form, validate)


def test_nested_hashes_and_indexed_arrays():
    parsed = parse_form([("line_items[0][price]", "price_1"), ("line_items[0][quantity]", "2"),
                         ("subscription_data[metadata][reader_id]", "r1"),
                         ("expand[0]", "customer"), ("expand[1]", "subscription")])
    assert parsed == {"line_items": [{"price": "price_1", "quantity": "2"}],
                      "subscription_data": {"metadata": {"reader_id": "r1"}},
                      "expand": ["customer", "subscription"]}


def test_empty_brackets_append():
    assert parse_form([("expand[]", "a"), ("expand[]", "b")]) == {"expand": ["a", "b"]}


def test_a_value_and_a_hash_under_one_name_is_an_error():
    with pytest.raises(StripeError):
        parse_form([("metadata", "x"), ("metadata[k]", "v")])


SCHEMA = {"name": STR, "count": INT, "on": BOOL, "metadata": METADATA,
          "kind": one_of("a", "b"), "items": [{"price": STR}]}


def test_validate_types_values():
    checked = validate({"name": "n", "count": "3", "on": "true", "metadata": {"k": "v"},
                        "kind": "a", "items": [{"price": "p"}]}, SCHEMA)
    assert checked == {"name": "n", "count": 3, "on": True, "metadata": {"k": "v"},
                       "kind": "a", "items": [{"price": "p"}]}


@pytest.mark.parametrize("params, param", [
    ({"nope": "1"}, "nope"),
    ({"items": [{"price": "p", "extra": "x"}]}, "items[0][extra]"),
    ({"count": "three"}, "count"),
    ({"on": "yes"}, "on"),
    ({"kind": "c"}, "kind"),
    ({"items": "p"}, "items"),
])
def test_validate_names_the_bad_parameter(params, param):
    with pytest.raises(StripeError) as error:
        validate(params, SCHEMA)
    assert error.value.param == param and error.value.status == 400


def test_metadata_updates_merge_delete_and_clear():
    assert merge_metadata({"a": "1", "b": "2"}, {"b": "", "c": "3"}) == {"a": "1", "c": "3"}
    assert merge_metadata({"a": "1"}, None) == {}
