"""newsletter.billing's plan: which intervals are on sale, what a year saves, amounts for readers."""
from __future__ import annotations

from newsletter.billing import Plan, money
from newsletter.config import DEFAULTS


def test_a_plan_sells_the_intervals_it_has_an_amount_for():
    assert Plan("Community membership", "usd", 600).amounts == {"month": 600}
    assert Plan("Community membership", "usd", 600, 6000).amounts == {"month": 600, "year": 6000}


def test_the_annual_saving_is_against_twelve_months_and_never_below_nothing():
    assert Plan("Community membership", "usd", 600, 6000).annual_saving == 1200
    assert Plan("Community membership", "usd", 600, 7500).annual_saving == 0
    assert Plan("Community membership", "usd", 600).annual_saving == 0


def test_amounts_given_as_text_are_numbers_and_a_blank_one_is_none():
    # from_prefixed_env keeps a value that is not JSON, such as an empty one, as a string.
    assert Plan.from_config(DEFAULTS | {"MEMBERSHIP_ANNUAL_AMOUNT": "6000"}).amounts == {"month": 600, "year": 6000}
    assert Plan.from_config(DEFAULTS | {"MEMBERSHIP_ANNUAL_AMOUNT": ""}).amounts == {"month": 600}


def test_amounts_read_as_readers_expect():
    assert (money(600, "usd"), money(450, "EUR"), money(600, "chf"), money(6000, "gbp")) == (
        "$6", "€4.50", "6 CHF", "£60")
