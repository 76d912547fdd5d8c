"""Hypothesis against both sign-up routes: never a 5xx, and nothing queued (so nothing stored)
from invalid input; a valid sign-up queues exactly one, with the normalised address."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.addresses import InvalidEmail, normalise
from tests.web.signups import BROKER_LIST, close_connections, decoded  # noqa: F401

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)

# Mostly addresses, some almost-addresses, some anything.
addresses = st.one_of(st.emails(), st.text(max_size=300),
                      st.builds(lambda a, b: f"{a}@{b}", st.text(max_size=30), st.text(max_size=30)))


@pytest.fixture
def app_config(app_config):
    # Fuzzing reaches validation, not the CSRF check or the rate limits (tested apart).
    return app_config | {"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False}


def valid(raw) -> bool:
    try:
        normalise(raw)
    except InvalidEmail:
        return False
    return True


def queued(broker) -> list[str]:
    """The addresses of the sign-ups queued since the last call (they are taken off the queue)."""
    raws = broker.lrange(BROKER_LIST, 0, -1)
    broker.delete(BROKER_LIST)
    return [decoded(raw)[1][1] for raw in reversed(raws)]


@FUZZ
@given(email=addresses, consent=st.sampled_from([None, "yes", "", "no", "on"]),
       website=st.sampled_from(["", "", "", "http://spam.example"]),
       extra=st.dictionaries(st.sampled_from(["article", "page", "email", "zzz"]), st.text(max_size=50), max_size=3))
def test_form_never_fails_and_queues_only_valid_sign_ups(client, broker, email, consent, website, extra):
    data = {"email": email, "website": website} | {k: v for k, v in extra.items() if k != "email"}
    if consent is not None:
        data["consent"] = consent
    queued(broker)

    response = client.post("/newsletter/signup", data=data)

    assert response.status_code in (303, 422), response.status
    taken = response.status_code == 303 and not website
    if not taken:
        assert queued(broker) == []
    else:
        assert consent and valid(email)
        assert queued(broker) == [normalise(email)]
    if response.status_code == 422:
        assert not website and (not consent or not valid(email))


@FUZZ
@given(body=json_values | st.fixed_dictionaries(
    {"email": addresses}, optional={"consent": json_values | st.just(True), "article": json_values,
                                    "page": json_values}))
def test_api_never_fails_and_queues_only_valid_sign_ups(client, broker, body):
    queued(broker)

    response = client.post("/api/v1/signups", data=json.dumps(body), content_type="application/json")

    assert response.status_code in (202, 422), response.status
    assert response.is_json
    if response.status_code == 422:
        assert queued(broker) == []
        assert response.get_json()["error"]["code"] == "invalid"
    else:
        assert isinstance(body, dict) and body.get("consent") is True and valid(body["email"])
        assert response.get_json() == {"status": "pending_confirmation"}
        assert queued(broker) == [normalise(body["email"])]


@FUZZ
@given(raw=st.binary(max_size=400),
       content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                     "multipart/form-data; boundary=x", "text/plain", "",
                                     "application/json; charset=latin-1"]),
       path=st.sampled_from(["/api/v1/signups", "/newsletter/signup"]))
def test_raw_bodies_never_fail(client, broker, raw, content_type, path):
    queued(broker)

    response = client.post(path, data=raw, content_type=content_type)

    assert response.status_code < 500, response.status
    if response.status_code not in (202, 303):
        assert queued(broker) == []
