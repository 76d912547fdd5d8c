"""No enumeration: a sign-up is answered alike for new, pending, confirmed, unsubscribed and
suppressed addresses, on both sign-up routes; the differences live in the worker."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from newsletter.models import ConsentRecord, Subscriber
from tests.web.signups import (broker, close_connections, csrf_token, make_subscriber,  # noqa: F401
                               post_json, post_signup, published, suppress)

STATES = ("new", "pending", "confirmed", "unsubscribed", "suppressed")


@pytest.fixture
def addresses(session) -> dict[str, str]:
    """One address in each state."""
    for state in ("pending", "confirmed", "unsubscribed"):
        make_subscriber(session, f"{state}@example.com", state)
    # Suppressed after a hard bounce, on the list no more (and, erased, not even a row).
    make_subscriber(session, "suppressed@example.com", "confirmed")
    suppress(session, "suppressed@example.com")
    suppress(session, "erased@example.com", reason="erased")
    session.commit()
    return {state: f"{state}@example.com" for state in STATES} | {"erased": "erased@example.com"}


def answer(response) -> tuple:
    """Everything the client sees of a response."""
    return response.status_code, sorted(response.headers.items()), response.data


def test_form_answers_every_state_byte_for_byte_alike(app, client, addresses, session, broker):
    token = csrf_token(client)
    answers = {state: answer(post_signup(client, email, token=token))
               for state, email in addresses.items()}

    assert answers["new"][0] == 303
    assert dict(answers["new"][1])["Location"] == "/newsletter/check-your-inbox"
    assert all(a == answers["new"] for a in answers.values()), answers
    assert_same_work(session, broker, addresses)


def test_api_answers_every_state_byte_for_byte_alike(client, addresses, session, broker):
    answers = {state: answer(post_json(client, {"email": email, "consent": True}))
               for state, email in addresses.items()}

    assert answers["new"][0] == 202
    assert answers["new"][2] == b'{"status":"pending_confirmation"}\n'
    assert all(a == answers["new"] for a in answers.values()), answers
    assert_same_work(session, broker, addresses)


def assert_same_work(session, broker, addresses):
    """Each sign-up recorded its consent and queued one mail task; no mail was sent inline."""
    session.expire_all()
    ids = {s.email: s.id for s in session.scalars(select(Subscriber))}
    assert published(broker) == [("subscribers.signup_mail", [ids[email]]) for email in addresses.values()]
    signed_up = session.scalars(select(ConsentRecord.subscriber_id).where(ConsentRecord.action == "signup"))
    assert sorted(signed_up) == sorted(ids[email] for email in addresses.values())


def test_states_are_left_to_the_worker(client, addresses, session):
    """The web answer changes no state: confirmed stays confirmed, unsubscribed stays unsubscribed."""
    for email in addresses.values():
        post_json(client, {"email": email, "consent": True})

    session.expire_all()
    states = dict(session.execute(select(Subscriber.email, Subscriber.state)).all())
    assert states == {"new@example.com": "pending", "pending@example.com": "pending",
                      "confirmed@example.com": "confirmed", "unsubscribed@example.com": "unsubscribed",
                      "suppressed@example.com": "confirmed", "erased@example.com": "pending"}


def test_case_variants_of_a_known_address_answer_alike(client, addresses):
    known = answer(post_json(client, {"email": "CONFIRMED@example.com", "consent": True}))
    new = answer(post_json(client, {"email": "Someone-New@example.com", "consent": True}))

    assert known == new
