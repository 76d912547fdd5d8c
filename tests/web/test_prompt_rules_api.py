"""GET and PUT /api/v1/prompts/rules with an operator token: the rules in force with a
fingerprint of them as ETag, saves guarded by If-Match, refusals that change nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletter import prompt_rules_edit as edit
from tests.support.console import bearer
from tests.support.prompts import rules_file

RULES = {"version": "desk-1", "prompts": [{"id": "appeal", "kind": "membership"}]}
URL = "/api/v1/prompts/rules"


@pytest.fixture
def app_config(app_config, tmp_path):
    return app_config | {"PROMPT_RULES": rules_file(tmp_path, RULES)}


@pytest.fixture
def auth(app):
    return bearer(app)


def etag(client, auth) -> str:
    return client.get(URL, headers=auth).headers["ETag"]


def put(client, auth, rules, etag: str | None = "now"):
    """A PUT of `rules`; If-Match `etag` ("now": the rules' ETag just before)."""
    etag = globals()["etag"](client, auth) if etag == "now" else etag
    headers = auth | ({"If-Match": etag} if etag else {})
    return client.put(URL, data=json.dumps(rules), headers=headers, content_type="application/json")


def on_disk(app) -> dict:
    return json.loads(Path(app.config["PROMPT_RULES"]).read_text())


def test_get_gives_the_rules_and_their_version_as_etag(client, auth):
    response = client.get(URL, headers=auth)
    on_file = Path(client.application.config["PROMPT_RULES"]).read_text()
    assert response.status_code == 200 and response.headers["ETag"] == f'"{edit.fingerprint(on_file)}"'
    assert response.get_json() == {"version": "desk-1", "saved_at": None, "saved_by": None, "enabled": True,
                                   "rules": RULES}
    assert response.headers["Cache-Control"] == "no-store"


def test_put_with_the_etag_saves_a_new_version(client, app, auth):
    response = put(client, auth, RULES | {"enabled": False})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["enabled"] is False and body["saved_by"] == "api:desk@example.org"
    assert on_disk(app)["version"] == body["version"] and response.headers["ETag"] == etag(client, auth)
    again = put(client, auth, RULES, etag=response.headers["ETag"])
    assert again.status_code == 200 and again.get_json()["enabled"] is True


def test_put_with_an_old_etag_is_412_and_changes_nothing(client, app, auth):
    old = etag(client, auth)
    assert put(client, auth, RULES).status_code == 200
    saved = on_disk(app)
    stale = put(client, auth, RULES | {"enabled": False}, etag=old)
    assert stale.status_code == 412 and stale.get_json()["error"]["code"] == "stale"
    assert on_disk(app) == saved


def test_put_without_if_match_is_428_and_star_means_whatever_is_in_force(client, app, auth):
    missing = put(client, auth, RULES, etag=None)
    assert missing.status_code == 428 and "If-Match" in missing.get_json()["error"]["message"]
    assert on_disk(app) == RULES
    assert put(client, auth, RULES | {"enabled": False}, etag="*").status_code == 200


@pytest.mark.parametrize("body, message", [
    ("{", "not JSON"),
    (json.dumps({"prompts": [{"id": "a", "kind": "poster"}]}), "prompts[0].kind"),
    ("x" * 300_000, "larger than 256 kB"),
    (b"\xff\xfe{}", "not UTF-8 text (byte 0)"),
    ('{"version": "x", "saved_at": null, "saved_by": null, "enabled": true, "rules": {"prompts": []}}',
     "unknown key `rules`"),  # GET's whole answer sent back instead of its `rules`
])
def test_invalid_rules_are_422_and_change_nothing(client, app, auth, body, message):
    response = client.put(URL, data=body, headers=auth | {"If-Match": etag(client, auth)},
                          content_type="application/json")
    assert response.status_code == (413 if len(body) > edit.MAX_BYTES else 422)
    assert message in response.get_json()["error"]["message"]
    assert on_disk(app) == RULES


def test_the_rules_api_needs_an_operator_token(client, app):
    assert client.get(URL).status_code == 401
    assert put(client, {}, RULES, etag='"anything"').status_code == 401
    assert on_disk(app) == RULES


def test_the_428_error_code_is_the_one_documented(client, auth):
    assert put(client, auth, RULES, etag=None).get_json()["error"]["code"] == "precondition_required"


@pytest.mark.parametrize("if_match", ['W/"{tag}"', '"nope", W/"{tag}"', '"nope"'])
def test_weak_or_unknown_tags_are_412(client, app, auth, if_match):
    tag = etag(client, auth).strip('"')
    response = put(client, auth, RULES | {"enabled": False}, etag=if_match.format(tag=tag))
    assert response.status_code == 412 and on_disk(app) == RULES


def test_any_of_several_tags_may_match(client, auth):
    assert put(client, auth, RULES, etag=f'"nope", {etag(client, auth)}').status_code == 200


def test_a_version_no_header_can_carry_still_gets_an_etag(client, app, auth):
    odd = RULES | {"version": 'a "quoted"\nversion é'}
    Path(app.config["PROMPT_RULES"]).write_text(json.dumps(odd))
    response = client.get(URL, headers=auth)
    assert response.status_code == 200 and response.get_json()["version"] == odd["version"]
    assert put(client, auth, RULES, etag=response.headers["ETag"]).status_code == 200


def test_star_matches_rules_in_force_but_not_a_file_that_cannot_be_read(client, app, auth):
    Path(app.config["PROMPT_RULES"]).write_text("{ broken")
    assert put(client, auth, RULES, etag="*").status_code == 412
    assert put(client, auth, RULES).status_code == 200  # its own ETag: the broken file is replaced
