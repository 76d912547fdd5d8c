"""One prompt's form (newsletter.prompt_rules_form): the document's values shown as text, the
form's text written back as the loader reads it, and saves through the real rules file."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest

from newsletter import prompt_rules_edit as edit
from newsletter import prompt_rules_form as form
from newsletter.prompt_rules import InvalidRules, load_rules, parse_rules

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
APPEAL = {"id": "appeal", "kind": "membership", "priority": 50, "min_reads": 3,
          "starts": "2026-12-01T06:00:00+01:00",
          "frequency_cap": {"impressions": 4, "window_days": 30},
          "exclude_sections": ["Obituaries", "Weather"],
          "experiment": {"name": "exp", "control_share": 0.1, "variants": [
              {"id": "exp:a", "copy": {"title": "Join us", "body": ["One {price}.", "Two."], "button": "Join"}},
              {"id": "exp:b", "weight": 2, "copy": {"title": "Be a member"}}]}}
DAILY = {"id": "daily", "kind": "newsletter", "snooze_days": 30}
RULES = {"version": "desk-1", "prompts": [APPEAL, DAILY]}


def text(rules: dict = RULES) -> str:
    return json.dumps(rules, indent=2)


def values(prompt_id: str = "appeal", rules: dict = RULES) -> dict:
    return dict(form.form_of(text(rules), prompt_id).values)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(text())
    return {"PROMPT_RULES": str(path), "INSTANCE_PATH": str(tmp_path / "instance")}


def test_the_form_shows_the_documents_values_as_text():
    shown = form.form_of(text(), "appeal")
    assert (shown.kind, shown.experiment, shown.variants) == ("membership", True, ("exp:a", "exp:b"))
    assert {k: shown.values[k] for k in ("enabled", "priority", "min_reads", "cap_impressions", "control_share")} == {
        "enabled": "on", "priority": "50", "min_reads": "3", "cap_impressions": "4", "control_share": "0.1"}
    assert shown.values["starts"] == "2026-12-01T05:00"  # in UTC, as the form says
    assert shown.values["exclude_sections"] == "Obituaries\nWeather"
    assert shown.values["variant-exp:a-body"] == "One {price}.\n\nTwo."
    assert (shown.values["read_window_days"], shown.values["variant-exp:b-weight"], shown.values["ends"]) == ("", "2", "")


def test_a_prompt_without_an_experiment_has_no_experiment_fields():
    shown = form.form_of(text(), "daily")
    assert (shown.experiment, shown.variants, shown.values["snooze_days"]) == (False, (), "30")
    assert "control_share" not in shown.values


def test_the_form_unchanged_writes_back_the_same_document():
    document = form.with_values(json.loads(text()), "appeal", values())
    assert document == RULES | {"prompts": [APPEAL | {"starts": "2026-12-01T05:00:00Z"}, DAILY]}  # the same moment


def test_values_are_written_with_their_types_and_blanks_drop_keys():
    changed = values() | {"enabled": "", "priority": "7", "ends": "2026-12-24T18:00", "min_gap_hours": "0.5",
                          "cap_impressions": "", "exclude_tags": " sponsored \r\n \ntragedy ", "exclude_sections": "",
                          "variant-exp:a-body": "First.\r\n\r\n  \r\nSecond {articles_read}.", "variant-exp:b-title": " ",
                          "control_share": "0"}
    item = form.with_values(json.loads(text()), "appeal", changed)["prompts"][0]
    assert (item["enabled"], item["priority"], item["ends"]) == (False, 7, "2026-12-24T18:00:00Z")
    assert item["frequency_cap"] == {"window_days": 30, "min_gap_hours": 0.5}
    assert item["exclude_tags"] == ["sponsored", "tragedy"] and "exclude_sections" not in item
    variants = item["experiment"]["variants"]
    assert variants[0]["copy"]["body"] == ["First.", "Second {articles_read}."]
    assert variants[1]["copy"] == {} and variants[1]["weight"] == 2
    assert item["experiment"]["control_share"] == 0
    prompt = parse_rules({"version": "x", "prompts": [item]}).prompts[0]
    assert (prompt.enabled, prompt.cap_impressions, prompt.ends) == (False, 0, datetime(2026, 12, 24, 18, tzinfo=timezone.utc))


def test_a_ticked_box_keeps_the_prompt_on_and_a_missing_cap_is_made_when_needed():
    document = json.loads(text({"version": "v", "prompts": [DAILY]}))
    item = form.with_values(document, "daily", {"enabled": "on", "cap_impressions": "2"})["prompts"][0]
    assert "enabled" not in item and item["frequency_cap"] == {"impressions": 2}
    assert item["snooze_days"] == 30  # not in the form: left as it is
    assert "snooze_days" not in form.with_values(document, "daily", {"enabled": "on", "snooze_days": ""})["prompts"][0]


def test_values_land_on_their_variant_and_one_added_since_is_left_as_it_is():
    typed = values() | {"variant-exp:a-title": "Typed on the older rules"}
    newer = json.loads(text())
    added = {"id": "exp:new", "copy": {"title": "Added since", "button": "Go"}}
    newer["prompts"][0]["experiment"]["variants"].insert(0, added)
    variants = form.with_values(newer, "appeal", typed)["prompts"][0]["experiment"]["variants"]
    assert [v["copy"].get("title") for v in variants] == ["Added since", "Typed on the older rules", "Be a member"]
    assert variants[0] == added


@pytest.mark.parametrize("name, raw, message", [
    ("min_reads", "three", "Stories read before it shows: a whole number, not 'three'"),
    ("min_reads", "2.5", "a whole number"),
    ("min_gap_hours", "nan", "Hours at least between two: a number"),
    ("min_gap_hours", "1e999", "a number"),
    ("starts", "next week", "Starts (UTC): a date and time such as"),
    ("control_share", "10%", "Control share"),
])
def test_a_value_of_the_wrong_kind_names_its_field(name, raw, message):
    with pytest.raises(InvalidRules, match=re.escape(message)):
        form.with_values(json.loads(text()), "appeal", values() | {name: raw})


def test_an_unknown_prompt_is_named():
    with pytest.raises(form.UnknownPrompt, match="'gone'"):
        form.form_of(text(), "gone")
    assert form.prompt_ids(text()) == ["appeal", "daily"] and form.prompt_ids("{ not json") == []


def test_a_save_makes_a_new_version_of_the_file(config):
    latest = edit.current(config)
    rules = form.save_form(config, "appeal", values() | {"variant-exp:a-title": "Stand with us"}, latest.fingerprint,
                           "desk@example.org", NOW)
    assert rules.version == "2026-12-07.1"
    saved = load_rules(edit.editable_path(config))
    assert saved.prompts[0].experiment.variants[0].copy["title"] == "Stand with us"
    assert [entry.version for entry in edit.history(config)] == ["2026-12-07.1", "desk-1"]


def test_a_save_from_an_older_version_is_refused_and_the_file_kept(config):
    opened = edit.current(config).fingerprint
    form.save_form(config, "daily", values("daily") | {"snooze_days": "3"}, opened, "a@example.org", NOW)
    saved = edit.current(config).text
    with pytest.raises(edit.StaleRules):
        form.save_form(config, "appeal", values() | {"min_reads": "9"}, opened, "b@example.org", NOW)
    assert edit.current(config).text == saved


def test_values_the_rules_refuse_are_not_saved(config):
    opened = edit.current(config).fingerprint
    with pytest.raises(InvalidRules, match=r"unknown token \{prize\}"):
        form.save_form(config, "appeal", values() | {"variant-exp:a-button": "Join for {prize}"}, opened, "a@b.org", NOW)
    with pytest.raises(InvalidRules, match="ends: later than starts"):
        form.save_form(config, "appeal", values() | {"ends": "2026-11-01T00:00"}, opened, "a@b.org", NOW)
    assert json.loads(edit.current(config).text) == RULES


@pytest.mark.parametrize("broken", ["{ broken", "[" * 100_000], ids=["not json", "too deep for the parser"])
def test_rules_in_force_that_are_not_json_send_the_desk_to_the_json_editor(config, tmp_path, broken):
    (tmp_path / "rules.json").write_text(broken)
    with pytest.raises(InvalidRules, match="mend them in the JSON editor"):
        form.form_of(edit.current(config).text, "appeal")
    assert form.prompt_ids(edit.current(config).text) == []  # the rules page lists no form, and still shows


def test_whole_numbers_written_as_30_0_are_shown_and_saved_as_30():
    rules = {"version": "v", "prompts": [DAILY | {"read_window_days": 30.0, "min_reads": 2.0}]}
    shown = values("daily", rules)
    assert (shown["read_window_days"], shown["min_reads"]) == ("30", "2")
    item = form.with_values(json.loads(text(rules)), "daily", shown | {"min_reads": "3.0"})["prompts"][0]
    assert (item["read_window_days"], item["min_reads"]) == (30, 3)


@pytest.mark.parametrize("changed, message", [
    ({"exclude_tags": ["Books, reviews", "line\nbreak"]}, "an entry has a line break"),
    ({"experiment": {"name": "e", "variants": [{"id": "e:a", "copy": {"title": "Two\nlines"}}]}}, "Title: it has"),
    ({"experiment": {"name": "e", "variants": [{"id": "e:a", "copy": {"body": ["One.\n\nTwo."]}}]}}, "a blank line"),
    ({"ends": "9999-12-31T23:30-01:00"}, "Ends (UTC): it has no time this form can show"),
])
def test_a_value_the_form_would_change_sends_the_desk_to_the_json_editor(changed, message):
    rules = {"version": "v", "prompts": [DAILY | changed]}
    with pytest.raises(InvalidRules, match=re.escape(message)) as refused:
        form.form_of(text(rules), "daily")
    assert "JSON editor" in str(refused.value)


def test_an_entry_with_a_comma_stays_one_entry():
    rules = {"version": "v", "prompts": [DAILY | {"exclude_sections": ["Books, reviews", "Opinion"]}]}
    item = form.with_values(json.loads(text(rules)), "daily", values("daily", rules))["prompts"][0]
    assert item["exclude_sections"] == ["Books, reviews", "Opinion"]


def test_a_moment_out_of_range_is_a_clear_refusal():
    with pytest.raises(InvalidRules, match=r"Starts \(UTC\): a date and time"):
        form.with_values(json.loads(text()), "appeal", values() | {"starts": "0001-01-01T00:30+01:00"})


def test_a_refused_form_is_refilled_with_what_the_operator_sent_and_the_rest_in_force():
    newer = json.loads(text())
    newer["prompts"][0]["experiment"]["variants"].append({"id": "exp:new", "weight": 3, "copy": {"title": "New"}})
    sent = {k: v for k, v in values().items() if k != "enabled"} | {"variant-exp:a-title": "Mine"}
    refilled = form.refilled(form.form_of(json.dumps(newer), "appeal"), sent)
    assert (refilled["variant-exp:a-title"], refilled["variant-exp:new-title"], refilled["variant-exp:new-weight"]) \
        == ("Mine", "New", "3")
    assert refilled["enabled"] == ""  # unticked by the operator, though on in force
    saved = form.with_values(newer, "appeal", refilled)["prompts"][0]["experiment"]["variants"][-1]
    assert saved == {"id": "exp:new", "weight": 3, "copy": {"title": "New"}}
