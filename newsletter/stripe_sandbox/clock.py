"""Moving the sandbox's time: what falls due on the way happens, in time order."""
from __future__ import annotations

from typing import Callable

from newsletter.stripe_sandbox import checkout, subscriptions
from newsletter.stripe_sandbox.store import Store

Due = tuple[int, Callable[[Store, dict], None], dict]


def advance(store: Store, seconds: int = 0, until: int | None = None) -> int:
    """Move time forward (by `seconds`, or to `until`); what falls due on the way runs."""
    target = store.now() + seconds if until is None else until
    if target < store.now():
        raise ValueError("the sandbox's clock only moves forward")
    while (due := next_due(store, target)) is not None:
        at, action, obj = due
        store.set_now(at, pin=True)
        action(store, obj)
    store.set_now(target)
    return store.now()


def next_due(store: Store, until: int) -> Due | None:
    """The earliest thing due at or before `until`, or None."""
    candidates: list[Due] = []
    for sub in store.all("subscription", lambda s: s["status"] in subscriptions.LIVE):
        candidates.append((subscriptions.period_end(sub), subscriptions.renew, sub))
        retry_at = subscriptions.next_retry(store, sub)
        if retry_at is not None:
            candidates.append((retry_at, subscriptions.retry, sub))
        warning_at = subscriptions.trial_warning_due(store, sub)
        if warning_at is not None:
            candidates.append((warning_at, subscriptions.warn_trial_ending, sub))
    for session in store.all("checkout.session", lambda s: s["status"] == "open"):
        candidates.append((session["expires_at"], checkout.expire, session))
    due = [candidate for candidate in candidates if candidate[0] <= until]
    return min(due, key=lambda candidate: candidate[0]) if due else None
