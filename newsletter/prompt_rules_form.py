"""One prompt of the rules as form fields: the console's per-prompt form, for the desk.

The form holds what a newsroom changes week to week: whether the prompt shows, its
priority and dates, metering, frequency cap, snooze, excluded sections and tags, and, for
an experiment, the control's share and each variant's weight and copy. Adding or removing
prompts and variants stays with the JSON editor. The form's values are written into the
document as an engineer would write them (a blank field drops the key: its default
applies; a field the form did not have, such as a variant added by a save since, is left
as it is) and saved through prompt_rules_edit.save: the same checks, versions and refusals.
Variants' fields are named by the variant's id, so values typed on an older version land
on the same variant whatever came before it since.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

from newsletter import prompt_rules_edit as edit
from newsletter.prompt_rules import InvalidRules, Rules

FORM_MOMENT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


class UnknownPrompt(LookupError):
    """No prompt of the rules in force has this id."""


@dataclass(frozen=True)
class Field:
    name: str                # the form's, and the key's place below
    path: tuple[str, ...]    # within the prompt (or the variant, for VARIANT_FIELDS)
    kind: str                # flag, whole, number, share, moment, lines, text, paragraphs
    label: str
    default: str = ""        # what applies when the field is blank


PROMPT_GROUPS = (  # the form's fieldsets: legend, fields
    ("When", (
        Field("enabled", ("enabled",), "flag", "Shown to readers (untick to switch this prompt off)"),
        Field("priority", ("priority",), "whole", "Priority (the highest shows first)", "0"),
        Field("starts", ("starts",), "moment", "Starts (UTC)"),
        Field("ends", ("ends",), "moment", "Ends (UTC)"),
    )),
    ("Who, and how often", (
        Field("min_reads", ("min_reads",), "whole", "Stories read before it shows", "0"),
        Field("read_window_days", ("read_window_days",), "whole", "…counted over the last (days)", "30"),
        Field("cap_impressions", ("frequency_cap", "impressions"), "whole", "Shown at most (times; 0: no cap)", "0"),
        Field("cap_window_days", ("frequency_cap", "window_days"), "whole", "…in (days)", "30"),
        Field("min_gap_hours", ("frequency_cap", "min_gap_hours"), "number", "Hours at least between two", "0"),
        Field("snooze_days", ("snooze_days",), "number", "Days away after a reader dismisses it", "0"),
    )),
    ("Where not", (
        Field("exclude_sections", ("exclude_sections",), "lines", "Never on these sections (one per line)"),
        Field("exclude_tags", ("exclude_tags",), "lines", "Never on stories with these tags (one per line)"),
    )),
)
PROMPT_FIELDS = tuple(f for _, group in PROMPT_GROUPS for f in group)
EXPERIMENT_FIELDS = (
    Field("control_share", ("experiment", "control_share"), "share",
          "Control share (readers who get nothing, to measure against: 0.1 is 10 %)", "0"),
)
VARIANT_FIELDS = (
    Field("weight", ("weight",), "number", "Weight (its share among the variants)", "1"),
    Field("title", ("copy", "title"), "text", "Title"),
    Field("body", ("copy", "body"), "paragraphs", "Body (a blank line between paragraphs)"),
    Field("button", ("copy", "button"), "text", "Button"),
)


@dataclass(frozen=True)
class PromptForm:
    """What the form shows of one prompt: its values as text, by field name."""

    prompt_id: str
    kind: str
    values: dict[str, str]
    variants: tuple[str, ...]  # the experiment's variant ids, in the document's order
    experiment: bool


def prompt_ids(text: str) -> list[str]:
    """The prompts' ids in the document's order (none when it is not valid JSON)."""
    try:
        return [p["id"] for p in _document(text)["prompts"] if isinstance(p, dict) and "id" in p]
    except InvalidRules:
        return []


def form_of(text: str, prompt_id: str) -> PromptForm:
    """The form of `prompt_id` in the rules document `text`."""
    item = _prompt(_document(text), prompt_id)
    values = {name: _showable(field, _get(holder, field.path)) for holder, field, name in _fields(item)}
    experiment = _experiment(item)
    return PromptForm(prompt_id, str(item.get("kind", "")), values,
                      tuple(str(v.get("id", "")) for v in _variants(experiment)), experiment is not None)


def refilled(shown: PromptForm, posted: Mapping[str, str]) -> dict[str, str]:
    """What a refused form is shown again with: the operator's values, and for fields their form
    did not have (a variant added since) those in force, so a second save keeps them."""
    values = shown.values | dict(posted)
    for field in PROMPT_FIELDS:
        if field.kind == "flag":  # a box the operator left unticked is not in what was sent
            values[field.name] = posted.get(field.name, "")
    return values


def variant_field(variant: dict | str, field: Field) -> str:
    """The form's name of a variant's field: `variant-<id>-title`."""
    variant_id = variant if isinstance(variant, str) else str(variant.get("id", ""))
    return f"variant-{variant_id}-{field.name}"


def save_form(config, prompt_id: str, form: Mapping[str, str], based_on: str, author: str,
              now: datetime) -> Rules:
    """The form's values written into the rules in force and saved as a new version."""
    latest = edit.current(config)
    if latest.fingerprint != based_on:
        raise edit.StaleRules(latest)
    document = with_values(_document(latest.text), prompt_id, form)
    return edit.save(config, json.dumps(document, indent=2, ensure_ascii=False) + "\n", based_on, author, now)


def with_values(document: dict, prompt_id: str, form: Mapping[str, str]) -> dict:
    """A copy of `document` with `prompt_id`'s fields set from `form`."""
    document = copy.deepcopy(document)
    for holder, field, name in _fields(_prompt(document, prompt_id)):
        _put(holder, field, form, name)
    return document


def _fields(item: dict):
    """The prompt's form, field by field: (the object holding its key, the field, its name in
    the form); the experiment's and the variants' only when the prompt has them."""
    for field in PROMPT_FIELDS:
        yield item, field, field.name
    experiment = _experiment(item)
    if experiment is not None:
        for field in EXPERIMENT_FIELDS:
            yield item, field, field.name
    for variant in _variants(experiment):
        for field in VARIANT_FIELDS:
            yield variant, field, variant_field(variant, field)


def _document(text: str) -> dict:
    document = edit.document(text)  # None for text that is not JSON, however deeply nested
    if document is None:
        raise InvalidRules("the rules in force are not valid JSON: mend them in the JSON editor")
    if not isinstance(document, dict) or not isinstance(document.get("prompts"), list):
        raise InvalidRules("the rules in force have no list of prompts: mend them in the JSON editor")
    return document


def _experiment(item: dict) -> dict | None:
    experiment = item.get("experiment")
    return experiment if isinstance(experiment, dict) else None


def _variants(experiment: dict | None) -> list[dict]:
    variants = (experiment or {}).get("variants")
    return [v for v in variants if isinstance(v, dict)] if isinstance(variants, list) else []


def _prompt(document: dict, prompt_id: str) -> dict:
    for item in document["prompts"]:
        if isinstance(item, dict) and item.get("id") == prompt_id:
            return item
    raise UnknownPrompt(f"no prompt has the id {prompt_id!r}")


# ---------------------------------------------------------------- values, both ways

def _showable(field: Field, value) -> str:
    """_shown(), refused (InvalidRules) for a value the form would change by showing it and
    sending it back: such a prompt is left to the JSON editor."""
    if not _fits_form(field, value):
        raise InvalidRules(f"{field.label}: {UNFIT[field.kind]}, which this form would change; "
                           "edit this prompt in the JSON editor")
    return _shown(field, value)


def _fits_form(field: Field, value) -> bool:
    texts = value if isinstance(value, list) else [value]
    if field.kind in ("text", "lines") and any(isinstance(t, str) and ("\n" in t or "\r" in t) for t in texts):
        return False  # a line break: an <input> drops it, and a line is an item of a list
    if field.kind == "paragraphs" and any(isinstance(t, str) and PARAGRAPH_BREAK.search(t) for t in texts):
        return False  # a blank line splits a paragraph in two
    return field.kind != "moment" or value is None or _form_moment(value) is not None


def _shown(field: Field, value) -> str:
    """A document's value as the form shows it ('' for absent: the default applies)."""
    if value is None:
        return "on" if field.kind == "flag" else ""
    if field.kind == "flag":
        return "on" if value is True else ""
    if field.kind == "moment":
        return _form_moment(value) or str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 30.0, which the loader takes as 30
    if isinstance(value, list):
        return ("\n\n" if field.kind == "paragraphs" else "\n").join(str(v) for v in value)
    return str(value)


def _form_moment(value) -> str | None:
    """The moment in UTC as the form's input shows it; None when it has none (not ISO, or
    past year 9999 in UTC)."""
    try:
        moment = datetime.fromisoformat(str(value))
        return (moment.astimezone(timezone.utc) if moment.tzinfo else moment).strftime(FORM_MOMENT)
    except (ValueError, OverflowError):
        return None


def _put(container: dict, field: Field, form: Mapping[str, str], name: str) -> None:
    """Set the field's key from the form's text: blank drops it (the default applies); a field
    the form did not have leaves it (a box is absent when unticked, so it is always read)."""
    if name not in form and field.kind != "flag":
        return
    value = _parsed(field, form.get(name, "").strip())
    *parents, key = field.path
    for name in parents:
        if not isinstance(container.get(name), dict):
            if value is None:
                return
            container[name] = {}
        container = container[name]
    if value is None:
        container.pop(key, None)
    else:
        container[key] = value


def _parsed(field: Field, raw: str):
    if field.kind == "flag":
        return None if raw == "on" else False  # ticked: the default, true
    if not raw:
        return None
    parse = PARSERS[field.kind]
    try:
        return parse(raw)
    except (ValueError, OverflowError) as error:
        raise InvalidRules(f"{field.label}: {EXPECTED[field.kind]}, not {raw!r}") from error


def _whole(raw: str) -> int:
    value = _number(raw)  # "30.0" too, as the loader takes 30.0
    if not isinstance(value, int):
        raise ValueError(raw)
    return value


def _number(raw: str) -> int | float:
    value = float(raw)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(raw)
    return int(value) if value.is_integer() else value


def _moment(raw: str) -> str:
    moment = datetime.fromisoformat(raw)
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def _lines(raw: str) -> list[str] | None:
    return [line.strip() for line in raw.splitlines() if line.strip()] or None


def _paragraphs(raw: str) -> list[str] | None:
    return [p.strip() for p in PARAGRAPH_BREAK.split(raw.replace("\r\n", "\n")) if p.strip()] or None


PARSERS = {"whole": _whole, "number": _number, "share": _number, "moment": _moment, "lines": _lines,
           "text": str, "paragraphs": _paragraphs}
EXPECTED = {"whole": "a whole number", "number": "a number", "share": "a number from 0 up to 1",
            "moment": "a date and time such as 2026-12-24T18:00"}
UNFIT = {"text": "it has a line break", "lines": "an entry has a line break",
         "paragraphs": "a paragraph has a blank line in it", "moment": "it has no time this form can show in UTC"}


def _get(container, path: tuple[str, ...]):
    for name in path:
        if not isinstance(container, dict):
            return None
        container = container.get(name)
    return container
