"""500 random event sequences: duplicates, any order, forged signatures and stale timestamps.

Each sequence makes a real history at the Stripe sandbox (a checkout paid, then random
renewals that succeed or fail, card changes, cancellations), then delivers that history's
signed events to POST /stripe/webhook shuffled, with repeats, with forgeries mixed in,
running the queued tasks at random moments. Whatever the order, the membership must end
as Stripe has it, and no forged or stale delivery may be taken.
"""
from __future__ import annotations

import json
import os
import random
import time

import pytest
import stripe
from sqlalchemy import func, select

from newsletter import db, memberships, stripe_events
from newsletter.billing import Billing
from newsletter.models import Membership, StripeEvent, utcnow
from newsletter.stripe_sandbox import sign
from tests.conftest import stripe_settings
from tests.web.signups import run_queued  # noqa: F401  (fixture)

SEQUENCES = int(os.environ.get("STRIPE_SEQUENCES", 500))
ACTIONS = ("renew", "renew", "fail_once", "fail_always", "fix_card", "cancel_at_end", "uncancel",
           "cancel_now", "days")


@pytest.fixture
def app_config(app_config, stripe_sandbox):
    return app_config | stripe_settings(stripe_sandbox)


@pytest.fixture
def billing(app, runner, stripe_sandbox):
    assert runner.invoke(args=["stripe", "sync"]).exit_code == 0
    return Billing.from_config(app.config)


@pytest.fixture
def stripe_client(stripe_sandbox):
    return stripe.StripeClient(stripe_sandbox.secret_key, base_addresses={"api": stripe_sandbox.url})


class History:
    """One subscription's life at the sandbox, and the events it raised."""

    def __init__(self, sandbox, client, rng: random.Random):
        self.sandbox, self.client, self.rng = sandbox, client, rng
        self.seen = len(sandbox.store.events)
        self.events: list[dict] = []

    def begin(self, app, billing, price_id: str, n: int) -> None:
        with app.app_context():
            session = db.session()
            reader = memberships.new_reader(session)
            session.commit()
            urls = {"success": "http://newsletter.test/s?session_id={CHECKOUT_SESSION_ID}",
                    "cancel": "http://newsletter.test/c"}
            url = memberships.start_checkout(session, billing, reader, price_id, urls,
                                             memberships.Attribution(variant=f"v{n % 3}"), utcnow())
        paid = self.sandbox.pay_checkout(url.rsplit("/", 1)[1], email=f"reader{n}@example.com")
        self.subscription, self.customer = paid["subscription"], paid["customer"]
        self.collect()

    def act(self, action: str) -> None:
        sandbox, sub = self.sandbox, self.subscription
        if action == "renew":
            sandbox.advance_clock(days=31)
        elif action == "fail_once":
            sandbox.fail_next_renewals(sub, 1)
            sandbox.advance_clock(days=31)
        elif action == "fail_always":
            sandbox.fail_next_renewals(sub)
            sandbox.advance_clock(days=self.rng.choice([31, 45, 60]))
        elif action == "fix_card":
            sandbox.set_card(self.customer, "4242424242424242")
        elif action in ("cancel_at_end", "uncancel"):
            self._update({"cancel_at_period_end": action == "cancel_at_end"})
        elif action == "cancel_now":
            self._cancel()
        else:
            sandbox.advance_clock(days=self.rng.choice([1, 4, 9]))
        self.collect()

    def _update(self, params: dict) -> None:
        if self.truth() != "canceled":
            self.client.v1.subscriptions.update(self.subscription, params=params)

    def _cancel(self) -> None:
        if self.truth() != "canceled":
            self.client.v1.subscriptions.cancel(self.subscription)

    def collect(self) -> None:
        """The events raised since the last look (this sequence's own, as only it acts)."""
        with self.sandbox.store.lock:
            fresh = self.sandbox.store.events[self.seen:]
            self.seen += len(fresh)
            self.events += [json.loads(json.dumps(e)) for e in fresh]

    def truth(self) -> str:
        return self.sandbox.get(self.subscription)["status"]

    def end(self) -> None:
        """Stop this subscription renewing while later sequences move the clock."""
        self._cancel()
        with self.sandbox.store.lock:
            self.seen = len(self.sandbox.store.events)


def deliveries(history: History, rng: random.Random, secret: str) -> list[tuple[bytes, str, bool]]:
    """(body, Stripe-Signature, genuine) in a random order: repeats, forgeries, stale ones."""
    now = int(time.time())
    out = []
    # A Stripe endpoint gets the types it subscribes to (docs/membership.md); now and then
    # another type comes too, and must be taken and ignored.
    wanted = [e for e in history.events if e["type"] in stripe_events.HANDLED or rng.random() < 0.1]
    for event in wanted:
        body = json.dumps(event).encode()
        for _ in range(rng.choice([1, 1, 1, 1, 2, 3])):
            out.append((body, sign(body, secret, now - rng.randint(0, 120)), True))
        forgery = rng.random()
        if forgery < 0.1:  # someone without the secret claims the subscription is active
            forged = json.loads(body)
            forged["id"] = forged["id"].replace("evt_", "evt_forged")
            forged["data"]["object"]["status"] = "active"
            out.append((json.dumps(forged).encode(), sign(body, secret, now), False))
        elif forgery < 0.18:
            out.append((body, sign(body, "whsec_not_the_secret", now), False))
        elif forgery < 0.25:  # a genuine signature, replayed too late
            out.append((body.replace(b'"id": "evt_', b'"id": "evt_stale'), sign(
                body.replace(b'"id": "evt_', b'"id": "evt_stale'), secret, now - 301 - rng.randint(0, 3600)), False))
    rng.shuffle(out)
    return out


def test_random_event_sequences_end_in_the_true_state(app, client, billing, stripe_sandbox, stripe_client,
                                                       run_queued):
    secret, price_id = stripe_sandbox.webhook_secret, billing.price_id()
    for n in range(SEQUENCES):
        rng = random.Random(n)
        history = History(stripe_sandbox, stripe_client, rng)
        history.begin(app, billing, price_id, n)
        for action in rng.choices(ACTIONS, k=rng.randint(0, 3)):
            history.act(action)
        for body, header, genuine in deliveries(history, rng, secret):
            response = client.post("/stripe/webhook", data=body,
                                   headers={"Stripe-Signature": header, "Content-Type": "application/json"})
            assert response.status_code == (200 if genuine else 400), f"sequence {n}: {response.get_data()}"
            if rng.random() < 0.3:
                run_queued()
        run_queued()
        check(app, history, n)
        history.end()
        run_queued()


def check(app, history: History, n: int) -> None:
    truth = history.sandbox.get(history.subscription)
    with app.app_context():
        session = db.session()
        row = session.scalars(select(Membership).where(
            Membership.stripe_subscription_id == history.subscription)).one()
        expected_state = {"active": "member", "trialing": "member", "past_due": "past_due"}.get(truth["status"], "none")
        assert (row.status, row.cancel_at_period_end) == (truth["status"], truth["cancel_at_period_end"]), \
            f"sequence {n}: {[e['type'] for e in history.events]}"
        assert memberships.reader_state(session, row.reader_id, utcnow(), 7) == expected_state, f"sequence {n}"
        taken = set(session.scalars(select(StripeEvent.id)))
        delivered = {e["id"] for e in history.events if e["type"] in stripe_events.HANDLED}
        assert delivered <= taken, f"sequence {n}"
        assert not any(i.startswith(("evt_forged", "evt_stale")) for i in taken), f"sequence {n}: forgery taken"
        assert session.scalar(select(func.count()).select_from(StripeEvent)
                              .where(StripeEvent.processed_at.is_(None))) == 0, f"sequence {n}"
