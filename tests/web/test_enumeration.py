"""No enumeration: a sign-up is answered alike for new, pending, confirmed, unsubscribed and
suppressed addresses, on both sign-up routes, and queues the same work without reading the
database; the differences live in the worker."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from newsletter.models import ConsentRecord, Subscriber
from tests.web.signups import (close_connections, csrf_token, make_subscriber,  # noqa: F401
                               post_json, post_signup, published, run_queued, suppress)

STATES = ("new", "pending", "confirmed", "unsubscribed", "suppressed")
EXPIRES = re.compile(r"Expires=[^;]*;")


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
    """Everything the client sees of a response, but the second its cookies' Expires was
    written in (requests that straddle a second differ there, whatever the address)."""
    headers = sorted((name, EXPIRES.sub("Expires=<the clock>;", value)) for name, value in response.headers.items())
    return response.status_code, headers, response.data


def test_form_answers_every_state_byte_for_byte_alike(app, client, addresses, session, broker, run_queued,
                                                     smtp_server):
    token = csrf_token(client)
    answers = {state: answer(post_signup(client, email, token=token))
               for state, email in addresses.items()}

    assert answers["new"][0] == 303
    assert dict(answers["new"][1])["Location"] == "/newsletter/check-your-inbox"
    assert all(a == answers["new"] for a in answers.values()), answers
    assert_same_work(session, broker, addresses, run_queued, smtp_server, "form")


def test_api_answers_every_state_byte_for_byte_alike(client, addresses, session, broker, run_queued,
                                                    smtp_server):
    answers = {state: answer(post_json(client, {"email": email, "consent": True}))
               for state, email in addresses.items()}

    assert answers["new"][0] == 202
    assert answers["new"][2] == b'{"status":"pending_confirmation"}\n'
    assert all(a == answers["new"] for a in answers.values()), answers
    assert_same_work(session, broker, addresses, run_queued, smtp_server, "api")


def assert_same_work(session, broker, addresses, run_queued, smtp_server, source):
    """Each sign-up queued one message, alike but for its address and request id; the worker
    then recorded every consent and sent what each state calls for."""
    messages = published(broker)
    assert [name for name, _ in messages] == ["subscribers.signup"] * len(addresses)
    assert [args[1] for _, args in messages] == list(addresses.values())
    assert len({args[0] for _, args in messages}) == len(addresses)  # a request id each
    assert len({repr(args[2:4]) for _, args in messages}) == 1  # context and wording alike
    assert smtp_server.messages == []  # no mail from the request

    run_queued()

    session.expire_all()
    ids = {s.email: s.id for s in session.scalars(select(Subscriber))}
    signed_up = session.scalars(select(ConsentRecord).where(ConsentRecord.action == "signup"))
    assert sorted((r.subscriber_id, r.source) for r in signed_up) == \
        sorted((ids[email], source) for email in addresses.values())
    subjects = {state: [m["Subject"] for m in smtp_server.to(email)] for state, email in addresses.items()}
    confirm, already = "Confirm your subscription to The Daily Edition", "You are already subscribed to The Daily Edition"
    assert subjects == {"new": [confirm], "pending": [confirm], "confirmed": [already],
                        "unsubscribed": [confirm], "suppressed": [], "erased": []}


def test_states_are_left_to_the_worker(client, addresses, session, run_queued):
    """A sign-up changes no state: confirmed stays confirmed, unsubscribed stays unsubscribed."""
    for email in addresses.values():
        post_json(client, {"email": email, "consent": True})
    run_queued()

    session.expire_all()
    states = dict(session.execute(select(Subscriber.email, Subscriber.state)).all())
    assert states == {"new@example.com": "pending", "pending@example.com": "pending",
                      "confirmed@example.com": "confirmed", "unsubscribed@example.com": "unsubscribed",
                      "suppressed@example.com": "confirmed", "erased@example.com": "pending"}


def test_case_variants_of_a_known_address_answer_alike(client, addresses):
    known = answer(post_json(client, {"email": "CONFIRMED@example.com", "consent": True}))
    new = answer(post_json(client, {"email": "Someone-New@example.com", "consent": True}))

    assert known == new
