"""The value checks of the prompt rules file (newsletter.prompt_rules).

The rules are edited by hand and in the console, so every value is checked for its JSON type
and its range before it is used: a bad document gives InvalidRules naming the key at fault
(`prompts[1].priority: a whole number from …`), never another exception. Each check takes the
object holding the key and where that object is in the document.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

# Days are sent to Redis as whole seconds (× 86400); ten years keeps every window sensible.
MAX_DAYS = 3660
MAX_HOURS = MAX_DAYS * 24
# What a reader's history keeps (newsletter.prompt_history), so the most a rule can ask of it:
# a threshold or a cap past these could never be reached, and would silently never apply.
MAX_READS = 200           # distinct stories kept per reader: the highest min_reads
MAX_IMPRESSIONS = 100     # impressions kept per reader and prompt: the highest cap
MAX_PRIORITY = 1_000_000
MAX_WEIGHT = 1_000
# A variant's (or control's) id travels in the checkout's metadata to Membership.prompt_variant,
# 100 characters; the experiment's name leaves room for `<name>:control`.
MAX_ID = 100
MAX_NAME = 100            # a version
MAX_EXPERIMENT_NAME = MAX_ID - len(":control")
COPY_TEXTS = ("title", "button")
COPY_PARAGRAPHS = "body"
# What prompts.fill_copy fills in; any other {word} would reach readers as written.
TOKENS = ("{articles_read}", "{price}")
TOKEN = re.compile(r"\{\s*\w+\s*\}")


class InvalidRules(ValueError):
    """The rules file cannot be used; the message names the key at fault."""


def path(where: str, key: str | int) -> str:
    """Where a key or list item is in the document: `prompts[1].priority`, `version`."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def is_number(value) -> bool:
    """A JSON number: True and False are JSON's booleans, not 1 and 0."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def whole_number(data: dict, key: str, where: str, default: int, high: int, low: int = 0) -> int:
    """data[key] as a whole number from `low` to `high` (30.0 counts as 30, as int() read it)."""
    value = data.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not (is_number(value) and isinstance(value, int) and low <= value <= high):
        raise InvalidRules(f"{path(where, key)}: a whole number from {low} to {high}")
    return value


def number(data: dict, key: str, where: str, default: float, high: float, low: float = 0) -> float:
    """data[key] as a number from `low` to `high` (NaN and Infinity are neither)."""
    value = data.get(key, default)
    if not (is_number(value) and low <= value <= high):
        raise InvalidRules(f"{path(where, key)}: a number from {low} to {high}")
    return float(value)


def share(data: dict, key: str, where: str) -> float:
    """data[key] as a fraction of readers: from 0 up to (not including) 1."""
    value = data.get(key, 0)
    if not (is_number(value) and 0 <= value < 1):
        raise InvalidRules(f"{path(where, key)}: from 0 up to (not including) 1")
    return float(value)


def flag(data: dict, key: str, where: str, default: bool) -> bool:
    """data[key] as true or false; the string "false" is not false, so it is refused."""
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise InvalidRules(f"{path(where, key)}: true or false")
    return value


def text(value, at: str, longest: int) -> str:
    """`value` as a string that is not blank and at most `longest` characters."""
    if not (isinstance(value, str) and value.strip() and len(value) <= longest):
        raise InvalidRules(f"{at}: a non-empty string of at most {longest} characters")
    return value


def optional_text(data: dict, key: str, where: str, longest: int) -> str | None:
    """data[key] as a string, or None when it is absent, null or empty (the default applies)."""
    value = data.get(key)
    return None if value in (None, "") else text(value, path(where, key), longest)


def version(data: dict) -> str:
    """The document's `version`: a string, or a number (1 is "1")."""
    value = data.get("version")
    if is_number(value) and -1e15 < value < 1e15:  # NaN, Infinity and 10**5000 are no versions
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= MAX_NAME:
        return value
    raise InvalidRules(f"version: a non-empty string of at most {MAX_NAME} characters, or a number")


def items(data: dict, key: str, where: str) -> list:
    """data[key] as a list; absent is empty."""
    value = data.get(key, [])
    if not isinstance(value, list):
        raise InvalidRules(f"{path(where, key)}: a list")
    return value


def strings(data: dict, key: str, where: str) -> list[str]:
    """data[key] as a list of strings; absent is empty."""
    values = items(data, key, where)
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidRules(f"{path(path(where, key), index)}: a string")
    return values


def optional_object(data: dict, key: str, where: str) -> dict | None:
    """data[key] as an object, or None when it is absent or null."""
    value = data.get(key)
    if value is not None and not isinstance(value, dict):
        raise InvalidRules(f"{path(where, key)}: an object (or null)")
    return value


def moment(data: dict, key: str, where: str) -> datetime | None:
    """data[key] as an aware date-time (UTC unless it says), or None when absent or null."""
    value = data.get(key)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as error:
        raise InvalidRules(f"{path(where, key)}: an ISO date or date-time") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def variant_copy(data: dict, where: str, variant_id: str) -> dict:
    """A variant's copy: `title` and `button` strings, `body` a list of paragraphs, each with
    no token but {articles_read} and {price}."""
    value = optional_object(data, "copy", where) or {}
    where = path(where, "copy")
    for key, entry in value.items():
        if key in COPY_TEXTS and isinstance(entry, str):
            known_tokens(entry, path(where, key), variant_id)
        elif key == COPY_PARAGRAPHS:
            for index, paragraph in enumerate(strings(value, key, where)):
                known_tokens(paragraph, path(path(where, key), index), variant_id)
        else:
            raise InvalidRules(f"{path(where, key)}: {_copy_expected(key)}")
    return dict(value)


def _copy_expected(key: str) -> str:
    if key in COPY_TEXTS:
        return "a string"
    return "not a key of copy: title, body (a list of paragraphs) and button only"


def known_tokens(copy_text: str, at: str, variant_id: str) -> None:
    """Refuses a {token} that prompts.fill_copy would leave as written (a typo, most likely)."""
    for match in TOKEN.finditer(copy_text):
        if match.group() not in TOKENS:
            raise InvalidRules(f"{at}: unknown token {match.group()} in variant {variant_id}; "
                               f"only {' and '.join(TOKENS)} are filled in")
