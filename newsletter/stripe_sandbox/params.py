"""Request parameters: Stripe's bracket form encoding in, checked and typed values out.

stripe-python sends `line_items[0][price]=…`, `expand[0]=…` and `metadata[k]=…`; other
clients send `expand[]=…`. Both parse to the same nested dicts and lists. A schema is a
dict of parameter names to a kind (STR, INT, BOOL, METADATA, one_of(...)), a nested
schema dict, or a one-item list for arrays; anything not in it is a Stripe-style 400.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from newsletter.stripe_sandbox.errors import StripeError, invalid_value, unknown_parameter

KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
SUBKEY = re.compile(r"\[([^\[\]]*)\]")


# ---------------------------------------------------------------- parsing

def parse_form(pairs: Iterable[tuple[str, str]]) -> dict:
    """Nested dicts and lists from `a[b][0]=v` pairs (`[]` appends)."""
    root: dict = {}
    for key, value in pairs:
        match = KEY.match(key)
        if not match:
            raise StripeError(f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *SUBKEY.findall(match.group(2))]
        _assign(root, parts, value, key)
    return _listify(root)


def _assign(node: dict, parts: list[str], value: str, key: str) -> None:
    for part in parts[:-1]:
        node = node.setdefault(part or str(len(node)), {})
        if not isinstance(node, dict):
            raise StripeError(f"Invalid parameter: {key} mixes a value and a hash", param=key)
    last = parts[-1] or str(len(node))
    if isinstance(node.get(last), dict):
        raise StripeError(f"Invalid parameter: {key} mixes a value and a hash", param=key)
    node[last] = value


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    values = {key: _listify(value) for key, value in node.items()}
    if values and all(key.isdigit() for key in values):
        return [values[key] for key in sorted(values, key=int)]
    return values


# ---------------------------------------------------------------- kinds

Kind = Callable[[Any, str], Any]


def STR(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid_value(param, f"Invalid string: {param} must be a string")
    return value


def INT(value: Any, param: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    raise invalid_value(param, f"Invalid integer: {value}")


def BOOL(value: Any, param: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise invalid_value(param, f"Invalid boolean: {value}")


def METADATA(value: Any, param: str) -> dict | None:
    """Metadata hash; `metadata=` (empty) means clear it all, a key set to '' deletes it."""
    if value == "":
        return None
    if not isinstance(value, dict):
        raise invalid_value(param, "Invalid hash")
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 40 or len(item) > 500:
            raise invalid_value(f"{param}[{key}]", "Metadata keys are at most 40 characters "
                                "and values at most 500 characters, both strings.")
    return value


def one_of(*choices: str) -> Kind:
    def kind(value: Any, param: str) -> str:
        if value not in choices:
            raise invalid_value(param, f"Invalid {param}: must be one of {', '.join(choices)}")
        return value
    return kind


# ---------------------------------------------------------------- validation

COMMON = {"expand": [STR]}
LIST = {"limit": INT, "starting_after": STR, "ending_before": STR, **COMMON}


def validate(params: dict, schema: dict, prefix: str = "") -> dict:
    """`params` typed by `schema`; a StripeError names the first parameter that is wrong."""
    checked = {}
    for name, value in params.items():
        param = f"{prefix}[{name}]" if prefix else name
        if name not in schema:
            raise unknown_parameter(param)
        checked[name] = _check(value, schema[name], param)
    return checked


def _check(value: Any, spec: Any, param: str) -> Any:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise invalid_value(param, f"Invalid object: {param} must be a hash")
        return validate(value, spec, param)
    if isinstance(spec, list):
        if value == "":
            return []
        if not isinstance(value, list):
            raise invalid_value(param, f"Invalid array: {param} must be an array")
        return [_check(item, spec[0], f"{param}[{i}]") for i, item in enumerate(value)]
    return spec(value, param)


def merge_metadata(current: dict, update: dict | None) -> dict:
    """Stripe's metadata update: keys merge, '' deletes one, an empty `metadata` clears all."""
    if update is None:
        return {}
    merged = {**current, **update}
    return {key: value for key, value in merged.items() if value != ""}
