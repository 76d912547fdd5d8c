"""The sandbox's state: every object by id, the clock, the events; one lock for all.

Every change runs inside `store.transaction()`. When the outermost transaction ends the
state is handed to `persist` (a state file's writer, or nothing), then the events raised
during it, kept in an outbox, go to `publish` (the webhook delivery): webhooks never
describe a half-made change, nor one a restart would forget.
"""
from __future__ import annotations

import contextlib
import copy
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from newsletter.stripe_sandbox.errors import StripeError, no_such

API_VERSION = "2026-10-28.endive"
ALPHABET = string.ascii_letters + string.digits
MAX_LIMIT = 100


@dataclass
class Settings:
    """How the sandbox behaves where Stripe lets an account choose."""

    payment_retry_days: tuple[int, ...] = (3, 5, 7)   # after each failed renewal charge
    after_failed_retries: str = "canceled"            # or "unpaid", "past_due"


@dataclass
class RequestInfo:
    id: str | None = None
    idempotency_key: str | None = None


@dataclass
class Store:
    settings: Settings = field(default_factory=Settings)
    publish: Callable[[list[dict]], None] = lambda events: None
    persist: Callable[[Store], None] = lambda store: None
    endpoint_count: Callable[[str], int] = lambda event_type: 0
    base_url: str = "http://127.0.0.1"
    lock: threading.RLock = field(default_factory=threading.RLock)
    objects: dict[str, dict] = field(default_factory=dict)
    private: dict[str, dict] = field(default_factory=dict)   # what Stripe knows but never shows
    events: list[dict] = field(default_factory=list)
    clock_offset: int = 0
    pinned_now: int | None = None   # while the clock runs something due, time stands at its moment
    request: RequestInfo = field(default_factory=RequestInfo)
    _outbox: list[dict] = field(default_factory=list)
    _depth: int = 0

    # ------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def transaction(self, request: RequestInfo | None = None) -> Iterator[Store]:
        with self.lock:
            self._depth += 1
            if request is not None:
                self.request = request
            try:
                yield self
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._flush()

    def _flush(self) -> None:
        batch, self._outbox = self._outbox, []
        self.request = RequestInfo()
        self.persist(self)
        if batch:
            self.publish(batch)

    # ------------------------------------------------------------ time and ids

    def now(self) -> int:
        if self.pinned_now is not None:
            return self.pinned_now
        return int(time.time()) + self.clock_offset

    def set_now(self, timestamp: int, pin: bool = False) -> None:
        self.pinned_now = None
        self.clock_offset = max(self.clock_offset, timestamp - int(time.time()))
        if pin:
            self.pinned_now = max(timestamp, self.now())

    @staticmethod
    def new_id(prefix: str, length: int = 24) -> str:
        return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))

    # ------------------------------------------------------------ objects

    def add(self, obj: dict, **private) -> dict:
        self.objects[obj["id"]] = obj
        self.private[obj["id"]] = private
        return obj

    def get(self, object_id: str, kind: str, param: str = "id") -> dict:
        """The live object; 404 resource_missing when it is not there or of another kind."""
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise no_such(kind, object_id, param)
        return obj

    def all(self, kind: str, match: Callable[[dict], bool] = lambda obj: True) -> list[dict]:
        """Objects of a kind, newest first (Stripe's list order)."""
        found = [obj for obj in self.objects.values() if obj["object"] == kind and match(obj)]
        return found[::-1]

    def page(self, kind: str, params: dict, url: str,
             match: Callable[[dict], bool] = lambda obj: True) -> dict:
        """A list object: `limit`, `starting_after` and `ending_before` as Stripe pages."""
        found = self.all(kind, match)
        limit = params.get("limit", 10)
        if not 1 <= limit <= MAX_LIMIT:
            raise StripeError("This value must be between 1 and 100.", param="limit")
        ids = [obj["id"] for obj in found]
        if "starting_after" in params:
            found = found[_position(ids, params["starting_after"], "starting_after") + 1:]
        elif "ending_before" in params:
            found = found[:_position(ids, params["ending_before"], "ending_before")][-limit:]
        return {"object": "list", "data": found[:limit], "has_more": len(found) > limit,
                "url": url}

    def view(self, obj: dict, expand: list[str] = ()) -> dict:
        """A copy for a response, with `expand` paths replaced by their objects."""
        shown = copy.deepcopy(obj)
        for path in expand:
            self._expand(shown, path.split("."), path)
        return shown

    def _expand(self, node, parts: list[str], path: str) -> None:
        if isinstance(node, list):
            for item in node:
                self._expand(item, parts, path)
            return
        head, rest = parts[0], parts[1:]
        if not isinstance(node, dict) or head not in node:
            raise StripeError(f"This property cannot be expanded ({path}).", param="expand")
        if isinstance(node[head], str) and node[head] in self.objects:
            node[head] = copy.deepcopy(self.objects[node[head]])
        if rest and node[head] is not None:
            self._expand(node[head], rest, path)

    # ------------------------------------------------------------ events

    def emit(self, event_type: str, obj: dict, previous: dict | None = None) -> dict:
        """Record an event with a snapshot of `obj` now; delivered when the change ends."""
        data = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = copy.deepcopy(previous)
        event = {
            "id": self.new_id("evt_"), "object": "event", "api_version": API_VERSION,
            "created": self.now(), "data": data, "livemode": False,
            "pending_webhooks": self.endpoint_count(event_type),
            "request": {"id": self.request.id, "idempotency_key": self.request.idempotency_key},
            "type": event_type,
        }
        self.add(event)
        self.events.append(event)
        self._outbox.append(event)
        return event

    def emit_changes(self, event_type: str, obj: dict, before: dict) -> dict | None:
        """An `*.updated` event whose previous_attributes are the top-level fields that changed."""
        previous = {key: before.get(key) for key in obj if obj[key] != before.get(key)}
        return self.emit(event_type, obj, previous) if previous else None


def _position(ids: list[str], object_id: str, param: str) -> int:
    if object_id not in ids:
        raise StripeError(f"No such object: '{object_id}'", status=404, param=param,
                          code="resource_missing")
    return ids.index(object_id)
