"""The sandbox's state in a file, so that `newsletter dev` keeps its Stripe across restarts.

The file is JSON, written whole after each change (a temporary file in the same folder,
synced to disk, then renamed over the old one), so it always holds a finished state.
A file that cannot be read is moved aside and the sandbox starts empty.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from newsletter.atomic_files import write_atomically
from newsletter.stripe_sandbox.store import Store

FORMAT = 1   # bump when the file's layout changes; an older file is then set aside
log = logging.getLogger(__name__)


class UnreadableState(Exception):
    """The state file is not JSON, or not the layout this sandbox writes."""


class StateFile:
    """One sandbox's file: read when the sandbox is made, written after each change."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.set_aside: Path | None = None   # where an unreadable file was moved
        self.problem: str | None = None      # and why it could not be read
        self._written: bytes | None = None

    def load(self, store: Store) -> None:
        """Fill `store` from the file, if there is one; an unreadable one is moved aside."""
        try:
            restore(store, decode(read(self.path)))
        except FileNotFoundError:
            return
        except UnreadableState as error:
            self.problem, self.set_aside = str(error), move_aside(self.path)
            log.warning("Stripe sandbox: %s could not be read (%s); moved to %s, starting empty",
                        self.path, self.problem, self.set_aside)
            return
        self._written = encode(store)

    def save(self, store: Store) -> None:
        """Write the state if it changed since the last write (a read changes nothing)."""
        data = encode(store)
        if data == self._written:
            return
        try:
            write_atomically(self.path, data, new_mode=0o600)  # the account's customers and keys
        except OSError as error:   # the state stays in memory; the next change tries again
            log.warning("Stripe sandbox: could not save its state to %s (%s)", self.path, error)
            return
        self._written = data


def encode(store: Store) -> bytes:
    """The state as the file holds it; events by id, as they are objects too."""
    return json.dumps({
        "format": FORMAT, "base_url": store.base_url, "clock_offset": store.clock_offset,
        "objects": store.objects, "private": store.private,
        "events": [event["id"] for event in store.events],
    }, indent=1).encode()


def read(path: Path) -> bytes:
    """The file's bytes; FileNotFoundError when there is none, UnreadableState otherwise."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise UnreadableState(str(error)) from None


def decode(data: bytes) -> dict:
    """The Store fields a file holds; raises UnreadableState."""
    try:
        state = json.loads(data)
    except ValueError as error:   # UnicodeDecodeError is one too
        raise UnreadableState(f"not JSON: {error}") from None
    found = state.get("format") if isinstance(state, dict) else None
    if found != FORMAT:
        raise UnreadableState(f"format {found!r}, this sandbox reads format {FORMAT}")
    try:
        return fields(state)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise UnreadableState(f"incomplete: {error!r}") from None


def fields(state: dict) -> dict:
    objects, private = state["objects"], state["private"]
    if not all(obj["id"] == object_id and isinstance(obj["object"], str)
               for object_id, obj in objects.items()):
        raise ValueError("an object filed under another id")
    if not all(isinstance(secrets, dict) for secrets in private.values()):
        raise ValueError("private data that is not a mapping")
    return {"objects": objects, "private": private,
            "events": [objects[event_id] for event_id in state["events"]],
            "clock_offset": int(state["clock_offset"]), "base_url": str(state["base_url"])}


def restore(store: Store, saved: dict) -> None:
    for name, value in saved.items():
        setattr(store, name, value)


def move_aside(path: Path) -> Path:
    """Rename an unreadable file to `<name>.broken-<time>`, kept for a look, out of the way."""
    aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    return aside


def rebase(store: Store, url: str) -> None:
    """Point the sandbox's own pages in stored objects at `url`, its address in this run."""
    old, store.base_url = store.base_url, url
    if old != url:
        _rewrite(store.objects, old + "/", url + "/")


def _rewrite(node: dict | list, old: str, new: str) -> None:
    # In place: an event in `store.events` is the same dict as in `store.objects`.
    for key, value in list(node.items() if isinstance(node, dict) else enumerate(node)):
        if isinstance(value, str) and value.startswith(old):
            node[key] = new + value[len(old):]
        elif isinstance(value, (dict, list)):
            _rewrite(value, old, new)
