"""GET and PUT /api/v1/prompts/rules with an operator token: the rules in force with their
version as ETag, saves guarded by If-Match, refusals that change nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def put(client, auth, rules, etag: str | None = '"desk-1"'):
    headers = auth | ({"If-Match": etag} if etag else {})
    return client.put(URL, data=json.dumps(rules), headers=headers, content_type="application/json")


def on_disk(app) -> dict:
    return json.loads(Path(app.config["PROMPT_RULES"]).read_text())


def test_get_gives_the_rules_and_their_version_as_etag(client, auth):
    response = client.get(URL, headers=auth)
    assert response.status_code == 200 and response.headers["ETag"] == '"desk-1"'
    assert response.get_json() == {"version": "desk-1", "saved_at": None, "saved_by": None, "enabled": True,
                                   "rules": RULES}
    assert response.headers["Cache-Control"] == "no-store"


def test_put_with_the_etag_saves_a_new_version(client, app, auth):
    response = put(client, auth, RULES | {"enabled": False})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["enabled"] is False and body["saved_by"] == "api:desk@example.org"
    assert response.headers["ETag"] == f'"{body["version"]}"' and on_disk(app)["version"] == body["version"]
    again = put(client, auth, RULES, etag=response.headers["ETag"])
    assert again.status_code == 200 and again.get_json()["enabled"] is True


def test_put_with_an_old_etag_is_412_and_changes_nothing(client, app, auth):
    assert put(client, auth, RULES).status_code == 200
    saved = on_disk(app)
    stale = put(client, auth, RULES | {"enabled": False})
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
    (b"\xff\xfe{}", "not JSON"),
])
def test_invalid_rules_are_422_and_change_nothing(client, app, auth, body, message):
    response = client.put(URL, data=body, headers=auth | {"If-Match": '"desk-1"'}, content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid" and message in response.get_json()["error"]["message"]
    assert on_disk(app) == RULES


def test_the_rules_api_needs_an_operator_token(client, app):
    assert client.get(URL).status_code == 401
    assert put(client, {}, RULES).status_code == 401
    assert on_disk(app) == RULES


def test_the_428_error_code_is_the_one_documented(client, auth):
    assert put(client, auth, RULES, etag=None).get_json()["error"]["code"] == "precondition_required"
