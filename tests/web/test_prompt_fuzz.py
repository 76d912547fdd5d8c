"""Hypothesis against the prompt slot's routes: whatever a browser (or anyone) sends, never a
5xx, a clear 4xx for what cannot be taken, and nothing counted or snoozed from an event that
is refused."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter import prompt_history
from tests.support.prompts import rules_file
from tests.web.test_prompt_api import BROWSER, RULES, ask
from tests.web.test_signup_fuzz import json_values

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
READER = "0123456789abcdef0123456789abcdef"
COUNTERS = ("exp:a", "exp:control", "daily", "card")

# Mostly near misses of a real event, some anything.
fields = st.one_of(st.sampled_from(["membership", "newsletter", "update_card", "exp:a", "exp:control", "daily",
                                    "card", "", "x" * 121]), st.text(max_size=130), json_values)
events = st.one_of(
    st.fixed_dictionaries({"event": st.sampled_from(["seen", "click", "dismiss", "SEEN", "view", ""]),
                           "prompt": fields, "variant": fields},
                          optional={"article": fields, "extra": json_values}),
    json_values)


@pytest.fixture
def app_config(app_config, tmp_path):
    return app_config | {"PROMPT_RULES": rules_file(tmp_path, RULES)}


def counted(broker) -> dict:
    return {c: prompt_history.counts(broker, c) for c in COUNTERS} | {
        "snoozes": broker.hgetall(f"prompt:snooze:{READER}")}


def accepted(body) -> bool:
    """What the route takes: a known event naming the reader's own bucket and its prompt's kind
    (READER is in exp:a: the rules' control share is 0)."""
    return (isinstance(body, dict) and body.get("event") in ("seen", "click", "dismiss")
            and [body.get("prompt"), body.get("variant")] in (["membership", "exp:a"], ["newsletter", "daily"],
                                                              ["update_card", "card"]))


@FUZZ
@given(body=events)
def test_events_never_fail_and_a_refused_one_changes_nothing(client, broker, body):
    client.set_cookie("rid", READER)
    before = counted(broker)

    response = client.post("/api/v1/prompt/events", json=body, headers={"User-Agent": BROWSER})

    if accepted(body):
        assert response.status_code == 204
    else:  # 415: no body at all (JSON's null) is no JSON document either
        assert response.status_code in (400, 415, 422), response.status
        assert response.json["error"]["message"]
        assert counted(broker) == before


@FUZZ
@given(raw=st.binary(max_size=200), content_type=st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"]))
def test_bodies_that_are_not_json_are_a_400_or_422(client, broker, raw, content_type):
    before = counted(broker)

    response = client.post("/api/v1/prompt/events", data=raw, headers={"Content-Type": content_type,
                                                                         "User-Agent": BROWSER})

    assert response.status_code in (400, 415, 422), response.status
    assert counted(broker) == before


@pytest.fixture
def stories(session):
    from tests.factories import make_article, paragraph

    slugs = [make_article(session, slug=f"story-{n}", body=[paragraph("A paragraph.")]).slug for n in range(1, 4)]
    session.commit()
    return slugs


@FUZZ
@given(article=st.one_of(st.sampled_from(["story-1", "story-2", "story-3"]), st.text(max_size=300)),
       cookie=st.one_of(st.text(max_size=60), st.just(READER), st.just(READER.upper())),
       user_agent=st.one_of(st.just(BROWSER), st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=200)))
def test_any_slug_cookie_or_user_agent_gets_a_decision_or_a_404(client, stories, article, cookie, user_agent):
    # (A header cannot carry a line break: HTTP itself keeps those out of the User-Agent.)
    client.set_cookie("rid", cookie)

    response = client.get("/api/v1/prompt", query_string={"article": article}, headers={"User-Agent": user_agent})

    if article in stories:
        assert response.status_code == 200
        assert set(response.json) == {"show", "prompt", "variant", "html"}
        assert "rid=" not in response.headers.get("Set-Cookie", "") or cookie != READER  # a valid id is kept
    else:
        assert response.status_code == 404, response.status
        assert response.json["error"]["message"]
