"""The console's rules editor, /operator/prompts/rules, as a signed-in operator: saves that
reach the reader's slot, the kill switch, restores, and refusals that keep the text."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from newsletter import db
from newsletter import prompt_rules_edit as edit
from newsletter.prompt_rules import DEFAULT_PATH, load_rules
from tests.factories import make_article
from tests.support.console import csrf_token, make_operator, sign_in
from tests.support.prompts import rules_file
from tests.web.markup import parse

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
RULES = {"version": "desk-1", "prompts": [
    {"id": "appeal", "kind": "membership", "experiment": {"name": "exp", "control_share": 0, "variants": [
        {"id": "exp:a", "copy": {"title": "Old title", "body": ["Join."], "button": "Join"}}]}}]}
PAGE = "/operator/prompts/rules"


@pytest.fixture
def app_config(app_config, tmp_path):
    return app_config | {"PROMPT_RULES": rules_file(tmp_path, RULES)}


@pytest.fixture
def story(app):
    with app.app_context():
        session = db.session()
        make_article(session, slug="a-story", section="News")
        session.commit()
    return "a-story"


def opened(client) -> str:
    """What the editor, opened now, names as the rules it was made from."""
    return parse(client.get(PAGE).data).find("input", id="based-on").attrs["value"]


def form(client, **fields) -> dict:
    """A form of the editor opened now (its token, its `based_on`), with `fields`."""
    return {"csrf_token": csrf_token(client, PAGE), "based_on": opened(client)} | fields


def with_title(title: str) -> str:
    rules = json.loads(json.dumps(RULES))
    rules["prompts"][0]["experiment"]["variants"][0]["copy"]["title"] = title
    return json.dumps(rules, indent=2)


def slot(client, slug: str) -> dict:
    """What the slot shows a reader of `slug` now."""
    return client.get(f"/api/v1/prompt?article={slug}", headers={"User-Agent": BROWSER}).get_json()


def slot_until(client, slug: str, check, wait: float = 3.0) -> dict:
    """The slot, asked until `check` holds or `wait` runs out: the rules are looked at once a second."""
    end = time.monotonic() + wait
    while True:
        answer = slot(client, slug)
        if check(answer) or time.monotonic() > end:
            return answer
        time.sleep(0.1)


def test_the_editor_shows_the_rules_in_force(signed_in, app):
    page = parse(signed_in.get(PAGE).data)
    assert json.loads(page.find("textarea", id="rules").text()) == RULES
    assert page.find("input", id="based-on").attrs["value"] == edit.fingerprint(Path(app.config["PROMPT_RULES"]).read_text())
    assert "Prompts are on" in page.find(data_prompts_state="on").text()


def test_a_save_reaches_the_readers_slot_within_a_second(signed_in, app, story):
    assert "Old title" in slot(signed_in, story)["html"]
    response = signed_in.post(PAGE, data=form(signed_in, rules=with_title("New title")))
    assert response.status_code == 303
    page = parse(signed_in.get(PAGE).data)
    assert "Saved as version" in page.find("p", role="status").text()
    assert "New title" in slot_until(signed_in, story, lambda a: "New title" in a["html"])["html"]
    saved = load_rules(Path(app.config["PROMPT_RULES"]))
    assert saved.version.count(".") == 1 and saved.version != "desk-1"
    assert [row.attrs["data-version"] for row in page.find_all("tr") if "data-version" in row.attrs] == [
        saved.version, "desk-1"]


@pytest.mark.parametrize("text, message", [
    ("{ not json", "not JSON"),
    (json.dumps({"prompts": [{"id": "appeal", "kind": "poster"}]}), "prompts[0].kind"),
])
def test_invalid_rules_are_refused_with_the_text_kept(signed_in, app, text, message):
    response = signed_in.post(PAGE, data=form(signed_in, rules=text))
    assert response.status_code == 422
    page = parse(response.data)
    assert message in page.find(role="alert").text()
    assert page.find("textarea", id="rules").text() == text
    assert json.loads(Path(app.config["PROMPT_RULES"]).read_text()) == RULES


def test_a_save_from_an_older_version_is_refused_with_the_text_kept(signed_in, app):
    before_first = opened(signed_in)
    assert signed_in.post(PAGE, data=form(signed_in, rules=with_title("First"))).status_code == 303
    mine = with_title("Second")
    response = signed_in.post(PAGE, data=form(signed_in, rules=mine, based_on=before_first))
    assert response.status_code == 409
    page = parse(response.data)
    assert "the rules were changed since: version 2026-12-" in page.find(role="alert").text()
    assert json.loads(page.find("textarea", id="rules").text()) == json.loads(mine)
    assert "First" in Path(app.config["PROMPT_RULES"]).read_text()


def test_an_expired_form_keeps_the_text(signed_in):
    mine = with_title("Typed for an hour")
    response = signed_in.post(PAGE, data={"csrf_token": "stale", "rules": mine, "based_on": "desk-1"},
                              headers={"Origin": "http://localhost"})  # as browsers send with a form
    assert response.status_code == 400
    page = parse(response.data)
    assert "nothing was saved" in page.find(role="alert").text()
    assert json.loads(page.find("textarea", id="rules").text()) == json.loads(mine)


def test_the_kill_switch_empties_every_slot_and_back(signed_in, story):
    assert slot(signed_in, story)["show"] is True
    assert signed_in.post(f"{PAGE}/switch", data=form(signed_in, enabled="off")).status_code == 303
    assert slot_until(signed_in, story, lambda a: not a["show"])["show"] is False
    page = parse(signed_in.get(PAGE).data)
    assert page.find_all(data_prompts_state="off")
    assert signed_in.post(f"{PAGE}/switch", data=form(signed_in, enabled="on")).status_code == 303
    assert slot_until(signed_in, story, lambda a: a["show"])["show"] is True


def test_restore_brings_back_a_kept_version(signed_in, app, story):
    signed_in.post(PAGE, data=form(signed_in, rules=with_title("Replaced")))
    viewed = parse(signed_in.get(f"{PAGE}/version?v=desk-1").data)
    assert json.loads(viewed.find_all("pre")[-1].text()) == RULES
    response = signed_in.post(f"{PAGE}/restore", data=form(signed_in, version="desk-1"))
    assert response.status_code == 303
    assert "Old title" in slot_until(signed_in, story, lambda a: "Old title" in a["html"])["html"]
    assert signed_in.get(f"{PAGE}/version?v=nope").status_code == 404


def test_an_unwritable_rules_file_is_a_clear_error_with_the_text_kept(signed_in, app):
    # /proc takes no new files, even from root (CI runs as root, so file modes would not refuse).
    app.config["PROMPT_RULES"] = "/proc/self/prompt-rules.json"
    mine = with_title("Cannot land")
    response = signed_in.post(PAGE, data=form(signed_in, rules=mine))
    assert response.status_code == 500
    page = parse(response.data)
    assert "cannot be written" in page.find(role="alert").text()
    assert json.loads(page.find("textarea").text()) == json.loads(mine)


def test_without_prompt_rules_the_save_lands_in_the_instance_folder(signed_in, app):
    app.config["PROMPT_RULES"] = None
    shipped = load_rules(DEFAULT_PATH).version
    assert signed_in.post(PAGE, data=form(signed_in, rules=with_title("Ours"))).status_code == 303
    saved = json.loads((Path(app.instance_path) / "prompt_rules.json").read_text())
    assert saved["saved_by"] == "desk@example.org" and load_rules(DEFAULT_PATH).version == shipped


def test_the_editor_is_for_operators_only(client, app):
    response = client.get(PAGE)
    assert response.status_code == 302 and response.headers["Location"].startswith("/operator/login")
    token = csrf_token(client)
    response = client.post(PAGE, data={"csrf_token": token, "rules": with_title("Not yours"), "based_on": "desk-1"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/operator/login")
    assert json.loads(Path(app.config["PROMPT_RULES"]).read_text()) == RULES


def test_nul_bytes_anywhere_are_a_clear_answer(signed_in, app, story):
    raw_nul = with_title("aXb").replace("aXb", "a\x00b")  # json.dumps would escape it
    raw = signed_in.post(PAGE, data=form(signed_in, rules=raw_nul))
    assert raw.status_code == 422 and "not JSON: Invalid control character" in parse(raw.data).find(role="alert").text()
    escaped = with_title("a\\u0000b")
    assert signed_in.post(PAGE, data=form(signed_in, rules=escaped)).status_code == 303
    answer = slot_until(signed_in, story, lambda a: "Old title" not in a["html"])
    assert answer["show"] is True and "Old title" not in answer["html"] and "b</h2>" in answer["html"]
    assert signed_in.get(f"{PAGE}/version?v=\x00").status_code == 404
    assert signed_in.post(f"{PAGE}/restore", data=form(signed_in, version="\x00")).status_code == 404


def test_a_kept_version_shows_what_the_rules_in_force_changed(signed_in):
    signed_in.post(PAGE, data=form(signed_in, rules=with_title("New title")))
    page = parse(signed_in.get(f"{PAGE}/version?v=desk-1").data)
    changes = [node.text() for node in page.find_all("span", class_="console-diff__add")]
    removed = [node.text() for node in page.find_all("span", class_="console-diff__del")]
    assert '+ "title": "New title",' in changes and '- "title": "Old title",' in removed
    assert '- "version": "desk-1",' in removed and len(changes) == 4 and len(removed) == 2


def test_a_form_without_a_session_shows_nothing_and_leads_back_after_sign_in(client, app):
    make_operator(app)
    response = client.post(PAGE, data={"rules": with_title("Not yours"), "based_on": "desk-1"},
                           headers={"Referer": f"http://localhost{PAGE}"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/operator/login?next=/operator/prompts/rules"
    assert b"Old title" not in client.get(response.headers["Location"]).data  # the sign-in page
    assert json.loads(Path(app.config["PROMPT_RULES"]).read_text()) == RULES
    signed = sign_in(client, next_page="/operator/prompts/rules")
    assert signed.status_code == 303 and signed.headers["Location"] == PAGE


def test_a_form_sent_from_another_site_leads_to_the_dashboard(client, app):
    response = client.post(PAGE, data={"rules": "{}"}, headers={"Referer": "https://evil.example/operator/x"})
    assert response.headers["Location"] == "/operator/login"


def test_an_expired_form_from_another_site_does_not_put_its_text_in_the_editor(signed_in):
    planted = with_title("Planted by another site")
    response = signed_in.post(PAGE, data={"csrf_token": "stale", "rules": planted},
                              headers={"Origin": "https://evil.example"})
    assert response.status_code == 400
    page = parse(response.data)
    assert "another site was refused" in page.find(role="alert").text()
    assert "Planted" not in page.find("textarea", id="rules").text()


# ---------------------------------------------------------------- one prompt's form

FORM = f"{PAGE}/prompts/appeal"


def prompt_form(client, url: str = FORM, **changes) -> dict:
    """The form at `url` as it is shown now (values, token, `based_on`), with `changes`."""
    return sent_by(parse(client.get(url).data)) | {"csrf_token": csrf_token(client, url)} | changes


def sent_by(page) -> dict:
    """What a browser sends of the prompt form on `page` (ticked boxes only), its token aside."""
    form = page.find("form", id="prompt-form")
    fields = {node.attrs["name"]: node.attrs.get("value", "") for node in form.find_all("input")
              if node.attrs.get("type") != "checkbox" and "name" in node.attrs}
    fields |= {node.attrs["name"]: "on" for node in form.find_all("input", type="checkbox") if "checked" in node.attrs}
    fields |= {node.attrs["name"]: node.text() for node in form.find_all("textarea")}
    fields.pop("csrf_token")
    return fields


def test_each_prompt_has_a_form_showing_its_values(signed_in):
    links = parse(signed_in.get(PAGE).data).find("ul", id="prompt-forms").find_all("a")
    assert [a.attrs["href"] for a in links] == [FORM]
    page = parse(signed_in.get(FORM).data)
    assert page.find("input", id="field-variant-exp:a-title").attrs["value"] == "Old title"
    assert page.find("textarea", id="field-variant-exp:a-body").text() == "Join."
    assert "checked" in page.find("input", id="field-enabled").attrs


def test_a_form_save_reaches_the_readers_slot(signed_in, app, story):
    response = signed_in.post(FORM, data=prompt_form(signed_in, **{"variant-exp:a-title": "From the form"}))
    assert response.status_code == 303 and response.headers["Location"] == FORM
    assert "Saved as version" in parse(signed_in.get(FORM).data).find("p", role="status").text()
    assert "From the form" in slot_until(signed_in, story, lambda a: "From the form" in a["html"])["html"]
    saved = json.loads(Path(app.config["PROMPT_RULES"]).read_text())
    assert saved["saved_by"] == "desk@example.org"
    assert saved["prompts"][0]["experiment"]["variants"][0]["copy"] == {
        "title": "From the form", "body": ["Join."], "button": "Join"}


def test_a_form_unticking_shown_switches_the_prompt_off(signed_in, story):
    fields = prompt_form(signed_in)
    del fields["enabled"]  # an unticked box is not sent
    assert signed_in.post(FORM, data=fields).status_code == 303
    assert slot_until(signed_in, story, lambda a: not a["show"])["show"] is False


@pytest.mark.parametrize("changes, message", [
    ({"min_reads": "three"}, "Stories read before it shows: a whole number"),
    ({"variant-exp:a-button": "Join for {prize}"}, "unknown token {prize}"),
    ({"starts": "2026-12-10T00:00", "ends": "2026-12-01T00:00"}, "ends: later than starts"),
])
def test_a_refused_form_keeps_the_values_typed(signed_in, app, changes, message):
    response = signed_in.post(FORM, data=prompt_form(signed_in, **changes))
    assert response.status_code == 422
    page = parse(response.data)
    assert message in page.find(role="alert").text()
    for name, value in changes.items():
        assert page.find("input", id=f"field-{name}").attrs["value"] == value
    assert json.loads(Path(app.config["PROMPT_RULES"]).read_text()) == RULES


def test_a_form_from_an_older_version_is_refused_then_saved_over_it_keeping_other_prompts(signed_in, app, tmp_path):
    two = {"version": "desk-2", "prompts": RULES["prompts"] + [{"id": "daily", "kind": "newsletter"}]}
    app.config["PROMPT_RULES"] = rules_file(tmp_path, two, "two.json")
    mine = prompt_form(signed_in, **{"variant-exp:a-title": "Mine"})
    theirs = prompt_form(signed_in, f"{PAGE}/prompts/daily", snooze_days="5")
    assert signed_in.post(f"{PAGE}/prompts/daily", data=theirs).status_code == 303

    refused = signed_in.post(FORM, data=mine)
    assert refused.status_code == 409
    page = parse(refused.data)
    assert "the rules were changed since" in page.find(role="alert").text()
    assert page.find("input", id="field-variant-exp:a-title").attrs["value"] == "Mine"
    again = {node.attrs["name"]: node.attrs["value"] for node in page.find_all("input", type="hidden")
             if node.attrs["name"] == "based_on"}
    assert signed_in.post(FORM, data=mine | again).status_code == 303
    saved = json.loads(Path(app.config["PROMPT_RULES"]).read_text())
    assert saved["prompts"][0]["experiment"]["variants"][0]["copy"]["title"] == "Mine"
    assert saved["prompts"][1]["snooze_days"] == 5  # the other save's change stays


def test_an_expired_form_keeps_the_values(signed_in):
    fields = prompt_form(signed_in, **{"variant-exp:a-title": "Typed slowly"}) | {"csrf_token": "stale"}
    response = signed_in.post(FORM, data=fields, headers={"Origin": "http://localhost"})
    assert response.status_code == 400
    page = parse(response.data)
    assert "the values below are yours" in page.find(role="alert").text()
    assert page.find("input", id="field-variant-exp:a-title").attrs["value"] == "Typed slowly"


def test_an_unknown_prompt_is_a_clear_404(signed_in, app):
    assert "no prompt has the id 'gone'" in parse(signed_in.get(f"{PAGE}/prompts/gone").data).find(role="alert").text()
    assert signed_in.get(f"{PAGE}/prompts/gone").status_code == 404
    response = signed_in.post(f"{PAGE}/prompts/gone", data=prompt_form(signed_in))
    assert response.status_code == 404
    assert json.loads(Path(app.config["PROMPT_RULES"]).read_text()) == RULES


def test_the_form_is_for_operators_only(client, app):
    response = client.get(FORM)
    assert response.status_code == 302 and response.headers["Location"].startswith("/operator/login")
    response = client.post(FORM, data={"csrf_token": csrf_token(client), "min_reads": "0", "based_on": "x"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/operator/login")
    assert json.loads(Path(app.config["PROMPT_RULES"]).read_text()) == RULES


def test_a_refused_form_sent_again_keeps_a_variant_added_since(signed_in, app):
    mine = prompt_form(signed_in, **{"variant-exp:a-title": "Mine"})
    theirs = json.loads(Path(app.config["PROMPT_RULES"]).read_text())
    theirs["prompts"][0]["experiment"]["variants"].append({"id": "exp:b", "weight": 3, "copy": {"title": "Theirs"}})
    assert signed_in.post(PAGE, data=form(signed_in, rules=json.dumps(theirs))).status_code == 303

    refused = signed_in.post(FORM, data=mine)
    assert refused.status_code == 409
    again = sent_by(parse(refused.data)) | {"csrf_token": csrf_token(signed_in, FORM)}  # pressed again
    assert signed_in.post(FORM, data=again).status_code == 303
    variants = json.loads(Path(app.config["PROMPT_RULES"]).read_text())["prompts"][0]["experiment"]["variants"]
    assert [(v["id"], v.get("weight"), v["copy"].get("title")) for v in variants] == [
        ("exp:a", None, "Mine"), ("exp:b", 3, "Theirs")]


@pytest.mark.parametrize("url, field", [(FORM, "variant-exp:a-title"), (PAGE, "rules")], ids=["form", "json"])
def test_an_expired_form_is_still_checked_against_the_rules_it_was_made_from(signed_in, app, url, field):
    made_from = opened(signed_in)
    typed = "Typed slowly" if url == FORM else with_title("Typed slowly")
    assert signed_in.post(PAGE, data=form(signed_in, rules=with_title("Theirs"))).status_code == 303
    expired = signed_in.post(url, data=(prompt_form(signed_in) if url == FORM else {}) | {
        field: typed, "based_on": made_from, "csrf_token": "stale"}, headers={"Origin": "http://localhost"})
    assert expired.status_code == 400
    page = parse(expired.data)
    kept = [n.attrs["value"] for n in page.find_all("input", type="hidden") if n.attrs.get("name") == "based_on"]
    assert made_from in kept  # not the fingerprint of the rules saved since
    resent = {field: typed, "based_on": made_from, "csrf_token": csrf_token(signed_in, url)}
    if url == FORM:
        resent = prompt_form(signed_in) | resent
    assert signed_in.post(url, data=resent).status_code == 409
    assert "Theirs" in Path(app.config["PROMPT_RULES"]).read_text()


def test_an_invalid_json_save_is_still_checked_against_the_rules_it_was_made_from(signed_in, app):
    made_from = opened(signed_in)
    assert signed_in.post(PAGE, data=form(signed_in, rules=with_title("Theirs"))).status_code == 303
    invalid = signed_in.post(PAGE, data=form(signed_in, rules="{ typo", based_on=made_from))
    assert invalid.status_code == 422
    assert parse(invalid.data).find("input", id="based-on").attrs["value"] == made_from
