"""The prompt rules: a versioned JSON file read into frozen dataclasses.

The shipped default is newsletter/prompt_rules.json; PROMPT_RULES names another file, and
the console saves its edits to that file or, without it, to the instance folder
(newsletter.prompt_rules_edit). Readers' pages read the file at most once a second and parse
it again only when its bytes changed, so an edit takes effect without a restart.
docs/prompts.md describes every key; newsletter.prompt_rules_check checks each value, so a
bad document is an InvalidRules naming the key at fault, never another exception.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from pathlib import Path

from newsletter import prompt_rules_check as check
from newsletter.prompt_rules_check import InvalidRules  # defined beside the checks; callers import it from here

DEFAULT_PATH = Path(__file__).with_name("prompt_rules.json")
INSTANCE_NAME = "prompt_rules.json"
TOP_KEYS = ("version", "enabled", "prompts", "saved_at", "saved_by")  # saved_*: written by a save
KINDS = ("membership", "newsletter", "update_card")
PROMPT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,50}")


@dataclass(frozen=True)
class Variant:
    id: str
    weight: float = 1.0
    copy: dict = field(default_factory=dict)  # title, body (list of paragraphs), button


@dataclass(frozen=True)
class Experiment:
    name: str
    control_id: str
    control_share: float
    variants: tuple[Variant, ...]


@dataclass(frozen=True, eq=False)  # hashed by identity, like Rules
class Prompt:
    id: str
    kind: str
    priority: int = 0
    enabled: bool = True
    starts: datetime | None = None
    ends: datetime | None = None
    min_reads: int = 0
    read_window_days: int = 30
    cap_impressions: int = 0          # 0: no cap
    cap_window_days: int = 30
    min_gap_hours: float = 0
    snooze_days: float = 0
    exclude_sections: frozenset[str] = frozenset()
    exclude_tags: frozenset[str] = frozenset()
    experiment: Experiment | None = None

    @property
    def needs_history(self) -> bool:
        """Whether this prompt can only be shown to a reader whose history is kept."""
        return self.min_reads > 0 or self.cap_impressions > 0 or self.min_gap_hours > 0


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per file version
class Rules:
    version: str
    enabled: bool
    prompts: tuple[Prompt, ...]  # highest priority first

    @cached_property  # asked on every page view; the rules never change
    def history_days(self) -> int:
        """How long a reader's history must be kept for every window (and gap) to be counted."""
        windows = [max(p.read_window_days, p.cap_window_days, p.snooze_days, p.min_gap_hours / 24)
                   for p in self.prompts]
        return int(max(windows, default=30)) + 1

    @cached_property
    def read_windows(self) -> tuple[int, ...]:
        """The read windows (days) the prompts count stories in."""
        return tuple(sorted({p.read_window_days for p in self.prompts}))

    def owner(self, variant_id: str) -> Prompt | None:
        """The prompt a variant id, control id or (no experiment) prompt id belongs to."""
        for prompt in self.prompts:
            if variant_id in ([prompt.id] if prompt.experiment is None else _variant_ids(prompt)):
                return prompt
        return None


def rules_path(config) -> Path:
    """The rules file in force: PROMPT_RULES; else the copy the console saved in the instance
    folder, once there is one; else the shipped default."""
    if config.get("PROMPT_RULES"):
        return Path(config["PROMPT_RULES"])
    edited = editable_path(config)
    return edited if edited.exists() else DEFAULT_PATH


def editable_path(config) -> Path:
    """Where the console saves the rules: PROMPT_RULES, or the instance folder's copy (the
    shipped file is the package's own, replaced on every upgrade)."""
    return Path(config.get("PROMPT_RULES") or Path(config["INSTANCE_PATH"]) / INSTANCE_NAME)


def load_rules(path: Path) -> Rules:
    """The rules in `path`, parsed once per content of the file. Keyed on the bytes, not on
    the file's mtime, size and inode: two saves of one size inside a tick of the file clock
    can land on a reused inode."""
    data = Path(path).read_bytes()
    try:
        return _parsed(data)
    except _NotJson as error:
        raise InvalidRules(f"{path}: not JSON: {error}") from error


class _NotJson(ValueError):
    pass


@lru_cache(maxsize=8)
def _parsed(data: bytes) -> Rules:
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, 10**5000, [[[[…]]]]
        raise _NotJson(str(error)) from error
    return parse_rules(document)


def parse_rules(data: dict) -> Rules:
    """Rules from the file's JSON document; InvalidRules names what is wrong."""
    if not isinstance(data, dict) or "version" not in data:
        raise InvalidRules("rules: a JSON object with a `version` is needed")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:  # a typo ("prompt") would otherwise save rules with no prompts at all
        raise InvalidRules(f"rules: unknown key `{unknown[0]}` (the keys are {', '.join(TOP_KEYS)})")
    if "prompts" not in data:
        raise InvalidRules("prompts: required (an empty list for no prompts)")
    prompts = [parse_prompt(item, i) for i, item in enumerate(check.items(data, "prompts", ""))]
    ids = [p.id for p in prompts] + [v for p in prompts for v in _variant_ids(p)]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InvalidRules(f"rules: ids used twice: {', '.join(duplicates)}")
    prompts.sort(key=lambda p: -p.priority)
    return Rules(version=check.version(data), enabled=check.flag(data, "enabled", "", True),
                 prompts=tuple(prompts))


def parse_prompt(item: dict, index: int) -> Prompt:
    """The `index`th prompt of the document."""
    where = f"prompts[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not PROMPT_ID.fullmatch(item["id"]):
        raise InvalidRules(f"{where}.id: letters, digits, and . _ : - only (at most 50)")
    if item.get("kind") not in KINDS:
        raise InvalidRules(f"{where}.kind: one of {', '.join(KINDS)}")
    return Prompt(
        id=item["id"], kind=item["kind"],
        priority=check.whole_number(item, "priority", where, 0, check.MAX_PRIORITY, low=-check.MAX_PRIORITY),
        enabled=check.flag(item, "enabled", where, True),
        **_schedule(item, where), **_metering(item, where), **_cap(item, where), **_exclusions(item, where),
        experiment=parse_experiment(item, where),
    )


def _schedule(item: dict, where: str) -> dict:
    starts, ends = check.moment(item, "starts", where), check.moment(item, "ends", where)
    if starts and ends and ends <= starts:  # an empty run: the prompt would never show
        raise InvalidRules(f"{where}.ends: later than starts")
    return {"starts": starts, "ends": ends}


def _metering(item: dict, where: str) -> dict:
    return {"min_reads": check.whole_number(item, "min_reads", where, 0, check.MAX_READS),
            "read_window_days": check.whole_number(item, "read_window_days", where, 30, check.MAX_DAYS),
            "snooze_days": check.number(item, "snooze_days", where, 0, check.MAX_DAYS)}


def _cap(item: dict, where: str) -> dict:
    cap = check.optional_object(item, "frequency_cap", where) or {}
    where = f"{where}.frequency_cap"
    return {"cap_impressions": check.whole_number(cap, "impressions", where, 0, check.MAX_IMPRESSIONS),
            "cap_window_days": check.whole_number(cap, "window_days", where, 30, check.MAX_DAYS),
            "min_gap_hours": check.number(cap, "min_gap_hours", where, 0, check.MAX_HOURS)}


def _exclusions(item: dict, where: str) -> dict:
    return {key: frozenset(s.casefold() for s in check.strings(item, key, where))
            for key in ("exclude_sections", "exclude_tags")}


def parse_experiment(item: dict, where: str) -> Experiment | None:
    """The prompt's experiment, if it has one."""
    data = check.optional_object(item, "experiment", where)
    if data is None:
        return None
    where = f"{where}.experiment"
    variants = tuple(parse_variant(v, f"{where}.variants[{i}]")
                     for i, v in enumerate(check.items(data, "variants", where)))
    if not variants:
        raise InvalidRules(f"{where}.variants: at least one variant")
    if not any(v.weight for v in variants):  # prompts.bucket divides by the total
        raise InvalidRules(f"{where}.variants: at least one weight above 0")
    share = check.share(data, "control_share", where)
    name = check.optional_text(data, "name", where, check.MAX_EXPERIMENT_NAME) or item["id"]
    control_id = check.optional_text(data, "control_id", where, check.MAX_ID) or f"{name}:control"
    return Experiment(name=name, control_id=control_id, control_share=share, variants=variants)


def parse_variant(data: dict, where: str) -> Variant:
    """One copy variant of an experiment."""
    if not isinstance(data, dict):
        raise InvalidRules(f"{where}: an object with an id")
    variant_id = check.text(data.get("id"), f"{where}.id", check.MAX_ID)
    return Variant(id=variant_id, weight=check.number(data, "weight", where, 1, check.MAX_WEIGHT),
                   copy=check.variant_copy(data, where, variant_id))


def _variant_ids(prompt: Prompt) -> list[str]:
    if prompt.experiment is None:
        return []
    return [prompt.experiment.control_id] + [v.id for v in prompt.experiment.variants]
