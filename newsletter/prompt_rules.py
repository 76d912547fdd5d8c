"""The prompt rules: a versioned JSON file read into frozen dataclasses.

The shipped default is newsletter/prompt_rules.json; PROMPT_RULES names another file, and
the console saves its edits to that file or, without it, to the instance folder
(newsletter.prompt_rules_edit). A file is read again when it changes (its mtime), so an edit takes effect without a
restart. docs/prompts.md describes every key.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

DEFAULT_PATH = Path(__file__).with_name("prompt_rules.json")
INSTANCE_NAME = "prompt_rules.json"
KINDS = ("membership", "newsletter", "update_card")
PROMPT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,50}")


class InvalidRules(ValueError):
    """The rules file cannot be used; the message names the key at fault."""


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

    @property
    def history_days(self) -> int:
        """How long a reader's history must be kept for every window to be counted."""
        windows = [max(p.read_window_days, p.cap_window_days, p.snooze_days) for p in self.prompts]
        return int(max(windows, default=30)) + 1

    @property
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
    """The rules in `path`, parsed once per version of the file."""
    stat = os.stat(path)
    return _load(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load(path: str, _mtime_ns: int, _size: int) -> Rules:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InvalidRules(f"{path}: not JSON: {error}") from error
    return parse_rules(data)


def parse_rules(data: dict) -> Rules:
    """Rules from the file's JSON document; InvalidRules names what is wrong."""
    if not isinstance(data, dict) or "version" not in data:
        raise InvalidRules("rules: a JSON object with a `version` is needed")
    prompts = [parse_prompt(item, i) for i, item in enumerate(_list(data, "prompts"))]
    ids = [p.id for p in prompts] + [v for p in prompts for v in _variant_ids(p)]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InvalidRules(f"rules: ids used twice: {', '.join(duplicates)}")
    prompts.sort(key=lambda p: -p.priority)
    return Rules(version=str(data["version"]), enabled=bool(data.get("enabled", True)),
                 prompts=tuple(prompts))


def parse_prompt(item: dict, index: int) -> Prompt:
    where = f"prompts[{index}]"
    if not isinstance(item, dict) or not PROMPT_ID.fullmatch(str(item.get("id"))):
        raise InvalidRules(f"{where}.id: letters, digits, and . _ : - only")
    if item.get("kind") not in KINDS:
        raise InvalidRules(f"{where}.kind: one of {', '.join(KINDS)}")
    cap = item.get("frequency_cap") or {}
    return Prompt(
        id=item["id"], kind=item["kind"], priority=int(item.get("priority", 0)),
        enabled=bool(item.get("enabled", True)),
        starts=_moment(item.get("starts"), f"{where}.starts"), ends=_moment(item.get("ends"), f"{where}.ends"),
        min_reads=int(item.get("min_reads", 0)), read_window_days=int(item.get("read_window_days", 30)),
        cap_impressions=int(cap.get("impressions", 0)), cap_window_days=int(cap.get("window_days", 30)),
        min_gap_hours=float(cap.get("min_gap_hours", 0)), snooze_days=float(item.get("snooze_days", 0)),
        exclude_sections=frozenset(s.casefold() for s in _list(item, "exclude_sections")),
        exclude_tags=frozenset(t.casefold() for t in _list(item, "exclude_tags")),
        experiment=parse_experiment(item.get("experiment"), item["id"], where),
    )


def parse_experiment(data: dict | None, prompt_id: str, where: str) -> Experiment | None:
    if data is None:
        return None
    variants = tuple(Variant(id=str(v["id"]), weight=float(v.get("weight", 1)), copy=dict(v.get("copy", {})))
                     for v in _list(data, "variants"))
    if not variants:
        raise InvalidRules(f"{where}.experiment.variants: at least one variant")
    share = float(data.get("control_share", 0))
    if not 0 <= share < 1:
        raise InvalidRules(f"{where}.experiment.control_share: from 0 up to (not including) 1")
    name = str(data.get("name") or prompt_id)
    return Experiment(name=name, control_id=str(data.get("control_id") or f"{name}:control"),
                      control_share=share, variants=variants)


def _variant_ids(prompt: Prompt) -> list[str]:
    if prompt.experiment is None:
        return []
    return [prompt.experiment.control_id] + [v.id for v in prompt.experiment.variants]


def _list(data: dict, key: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise InvalidRules(f"{key}: a list is needed")
    return value


def _moment(value: str | None, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError) as error:
        raise InvalidRules(f"{where}: an ISO date or date-time") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
