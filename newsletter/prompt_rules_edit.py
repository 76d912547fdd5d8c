"""Saving the prompt rules from the console or the CLI: each save a new version of the file.

The app reads the file prompt_rules.rules_path names; a save writes the whole document to
prompt_rules.editable_path under a new `version` (today's date and a number) with who
saved it and when, through a temporary file renamed over the old one, so a worker reading
it never sees half a file. Every saved version is also kept, bounded, in a
`<name>.history/` folder beside it: what the console lists and restores. A save names the
fingerprint of the text it was made from (a hash: an engineer's edit that kept the version
counts too); when another save came in between, it is refused (StaleRules) rather than
silently undoing the other. Saves on one host are serialized by a lock file;
workers on other hosts see a save only through storage they share (docs/prompts.md).
"""
from __future__ import annotations

import difflib
import fcntl
import hashlib
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from newsletter.atomic_files import write_atomically
from newsletter.prompt_rules import InvalidRules, Rules, editable_path, parse_rules, rules_path

HISTORY_KEPT = 50
MAX_BYTES = 256 * 1024
SAVE_KEYS = ("version", "saved_at", "saved_by")  # set by a save, whatever the text said
UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


class StaleRules(Exception):
    """The rules were saved by someone else since the version the edit was made from."""

    def __init__(self, latest: Current) -> None:
        super().__init__(f"the rules were changed since: version {latest.version or '(unreadable)'} is in force"
                         + (f" (by {latest.saved_by}, {latest.saved_at})" if latest.saved_by else ""))
        self.latest = latest


class UnknownVersion(LookupError):
    """No kept version has this name."""


@dataclass(frozen=True)
class Current:
    """The rules file in force as text, and what it says of itself (version None: unreadable)."""

    path: Path
    text: str
    version: str | None
    saved_at: str | None = None
    saved_by: str | None = None
    enabled: bool = True

    @property
    def fingerprint(self) -> str:
        """What a save names as the text it was made from (and the API's ETag)."""
        return fingerprint(self.text)


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def current(config) -> Current:
    """The rules in force, as the editor shows them."""
    path = rules_path(config)
    try:
        return _read(path)
    except FileNotFoundError:  # PROMPT_RULES names a file not made yet: the first save makes it
        return Current(path, "", None)


def _read(path: Path) -> Current:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # an engineer's file in another encoding: shown, never taken as rules
        return Current(path, raw.decode("utf-8", "replace"), None)
    return _described(path, text, document(text))


def _described(path: Path, text: str, data) -> Current:
    if not isinstance(data, dict) or "version" not in data:
        return Current(path, text, None)
    return Current(path, text, str(data["version"]), _text(data.get("saved_at")), _text(data.get("saved_by")),
                   data.get("enabled", True) is not False)


def _text(value) -> str | None:
    return None if value is None else str(value)


def checked(text: str) -> dict:
    """The document in `text`, when it makes valid rules; else InvalidRules saying why."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InvalidRules(f"the rules are larger than {MAX_BYTES // 1024} kB")
    _check_text(text, "the text")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidRules(f"not JSON: {error.msg} (line {error.lineno}, column {error.colno})") from error
    except (ValueError, RecursionError) as error:  # 10**5000, [[[[…]]]]
        raise InvalidRules(f"not JSON: {error}") from error
    if isinstance(data, dict):
        data = {"version": "new"} | data  # a pasted document need not carry one: the save sets it
    parse_rules(data)
    _check_text(json.dumps(data, ensure_ascii=False), "a \\u escape")
    return data


def _check_text(text: str, what: str) -> None:
    """Lone surrogates (a \\ud800 escape) are no text: they could not be written as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidRules(f"not text: {what} holds {text[error.start]!r}, half of a UTF-16 pair") from None


def save(config, text: str, based_on: str, author: str, now: datetime) -> Rules:
    """Save `text` as the rules' new version, made from the text whose fingerprint is
    `based_on`; the new rules."""
    return _save_checked(config, checked(text), based_on, author, now)


def _save_checked(config, data: dict, based_on: str, author: str, now: datetime) -> Rules:
    """save() of a document checked() already passed."""
    path = editable_path(config)
    with _locked(path):
        before = current(config)
        if before.fingerprint != based_on:
            raise StaleRules(before)
        _keep(path, before)
        saved = {"version": _next_version(path, now, before.version), "saved_at": now.isoformat(timespec="seconds"),
                 "saved_by": author} | {k: v for k, v in data.items() if k not in SAVE_KEYS}
        document = json.dumps(saved, indent=2, ensure_ascii=False) + "\n"
        # The history first: a save that fails part way leaves the rules in force as they were.
        _write(_history_dir(path) / _file_name(saved["version"]), document)
        _write(path, document)
        _trim(_history_dir(path))
    return parse_rules(saved)


def switch(config, enabled: bool, based_on: str, author: str, now: datetime) -> Rules:
    """The kill switch: the rules in force saved with every prompt on or off. Off works
    even when the file in force cannot be read: then no prompt is left."""
    latest = current(config)
    try:
        data = checked(latest.text)
    except InvalidRules as error:
        if enabled:
            raise InvalidRules(f"the rules in force cannot be read ({error}): fix them in the editor") from error
        data = {"prompts": []}
    return _save_checked(config, data | {"enabled": enabled}, based_on, author, now)


def restore(config, version: str, based_on: str, author: str, now: datetime) -> Rules:
    """A kept version saved again, as the newest."""
    return save(config, kept(config, version).text, based_on, author, now)


def history(config) -> list[Current]:
    """The kept versions, newest first."""
    entries = [_read_kept(path) for path in _newest_first(_history_dir(editable_path(config)))]
    return [entry for entry in entries if entry is not None and entry.version is not None]


def _newest_first(folder: Path) -> list[Path]:
    stamped = []
    for path in folder.glob("*.json"):
        try:
            stamped.append((path.stat().st_mtime_ns, path))
        except FileNotFoundError:  # trimmed by a save meanwhile
            continue
    return [path for _, path in sorted(stamped, reverse=True)]


def kept(config, version: str) -> Current:
    """The kept version named `version`."""
    for entry in history(config):
        if entry.version == version:
            return entry
    raise UnknownVersion(f"no kept version {version!r}")


def changes(older: Current, newer: Current) -> list[str]:
    """What `newer` changed in `older`, as the lines of a unified diff (none: the same rules).
    Both are laid out alike first, so a file written on one line compares key by key."""
    return list(difflib.unified_diff(_laid_out(older.text), _laid_out(newer.text), lineterm="",
                                     fromfile=f"version {older.version}", tofile=f"version {newer.version}"))


def _laid_out(text: str) -> list[str]:
    parsed = document(text)
    return text.splitlines() if parsed is None else json.dumps(parsed, indent=2, ensure_ascii=False).splitlines()


def _read_kept(path: Path) -> Current | None:
    try:
        return _read(path)
    except FileNotFoundError:  # trimmed by a save meanwhile
        return None


def document(text: str):
    """The JSON in `text`, or None when there is none to read (a file an engineer broke)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _keep(path: Path, before: Current) -> None:
    """The version being replaced, into the history, when it is not there yet (the shipped
    file, or one an engineer put in place or edited without a new version)."""
    if before.version is None:
        return
    target = _history_dir(path) / _file_name(before.version)
    if target.exists() and fingerprint(target.read_text(encoding="utf-8", errors="replace")) != before.fingerprint:
        target = target.with_name(f"{target.stem}~{before.fingerprint}.json")
    if not target.exists():
        _write(target, before.text)


def _next_version(path: Path, now: datetime, before: str | None) -> str:
    day = now.strftime("%Y-%m-%d")
    kept_today = [_read_kept(p) for p in _history_dir(path).glob(f"{day}.*.json")]
    taken = [entry.version for entry in kept_today if entry is not None] + [before]
    numbers = [int(v.rsplit(".", 1)[1]) for v in taken if v and re.fullmatch(rf"{day}\.\d+", v)]
    return f"{day}.{max(numbers, default=0) + 1}"


def _history_dir(path: Path) -> Path:
    return path.with_name(f"{path.stem}.history")


def _file_name(version: str) -> str:
    # Versions an engineer wrote may hold anything; the name only has to be safe and distinct.
    return UNSAFE.sub("_", version)[:100] + ".json"


def _trim(folder: Path) -> None:
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in files[HISTORY_KEPT:]:
        old.unlink(missing_ok=True)


def _write(path: Path, text: str) -> None:
    write_atomically(path, text.encode("utf-8"))


@contextmanager
def _locked(path: Path):
    """One save at a time on this host, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
