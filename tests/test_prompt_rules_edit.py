"""Saving the prompt rules (newsletter.prompt_rules_edit) on real files in a temporary folder:
versions, the kept history, refusals that leave the file as it was, concurrent saves."""
from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timedelta, timezone

import pytest

from newsletter import prompt_rules_edit as edit
from newsletter.prompt_rules import DEFAULT_PATH, InvalidRules, load_rules, rules_path

NOW = datetime(2026, 12, 6, 9, 30, tzinfo=timezone.utc)
RULES = {"version": "desk-1", "prompts": [{"id": "appeal", "kind": "membership", "min_reads": 3}]}


@pytest.fixture
def config(tmp_path):
    """No PROMPT_RULES: the app reads the shipped rules until the console saves its own."""
    return {"PROMPT_RULES": None, "INSTANCE_PATH": str(tmp_path / "instance")}


@pytest.fixture
def configured(tmp_path):
    """PROMPT_RULES names a file an engineer put in place."""
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(RULES))
    return {"PROMPT_RULES": str(path), "INSTANCE_PATH": str(tmp_path / "instance")}


def text(rules: dict) -> str:
    return json.dumps(rules, indent=2)


def shipped_version() -> str:
    return load_rules(DEFAULT_PATH).version


def test_the_first_save_goes_to_the_instance_folder_and_keeps_the_shipped_rules(config):
    assert rules_path(config) == DEFAULT_PATH
    saved = edit.save(config, text(RULES), shipped_version(), "desk@example.org", NOW)
    assert saved.version == "2026-12-06.1"
    assert rules_path(config) == edit.editable_path(config)
    assert edit.editable_path(config).parent == edit.editable_path(config).parent.parent / "instance"
    assert DEFAULT_PATH.exists() and load_rules(DEFAULT_PATH).version == shipped_version()  # the package's own, untouched
    assert [v.version for v in edit.history(config)] == ["2026-12-06.1", shipped_version()]


def test_a_save_records_who_and_when_and_numbers_the_day(configured):
    first = edit.save(configured, text(RULES), "desk-1", "ana@example.org", NOW)
    second = edit.save(configured, text(RULES | {"enabled": False}), first.version, "bo@example.org",
                       NOW + timedelta(hours=1))
    assert (first.version, second.version) == ("2026-12-06.1", "2026-12-06.2")
    latest = edit.current(configured)
    assert (latest.version, latest.saved_by, latest.saved_at, latest.enabled) == (
        "2026-12-06.2", "bo@example.org", "2026-12-06T10:30:00+00:00", False)
    next_day = edit.save(configured, text(RULES), second.version, "ana@example.org", NOW + timedelta(days=1))
    assert next_day.version == "2026-12-07.1"
    assert [v.version for v in edit.history(configured)] == [
        "2026-12-07.1", "2026-12-06.2", "2026-12-06.1", "desk-1"]


def test_the_version_and_the_signature_in_the_text_are_the_saves_own(configured):
    forged = RULES | {"version": "2030-01-01.9", "saved_by": "someone else", "saved_at": "never"}
    edit.save(configured, text(forged), "desk-1", "ana@example.org", NOW)
    latest = edit.current(configured)
    assert (latest.version, latest.saved_by) == ("2026-12-06.1", "ana@example.org")
    no_version = {"prompts": RULES["prompts"]}
    assert edit.save(configured, text(no_version), latest.version, "ana@example.org", NOW).version == "2026-12-06.2"


@pytest.mark.parametrize("bad, message", [
    ("{", r"not JSON: Expecting property name enclosed in double quotes \(line 1, column 2\)"),
    ("[]", "a JSON object"),
    ('{"prompts": [{"id": "a", "kind": "poster"}]}', "prompts\\[0\\].kind"),
    ("x" * (edit.MAX_BYTES + 1), "larger than 256 kB"),
])
def test_invalid_rules_are_refused_and_the_file_is_as_it_was(configured, bad, message):
    before = edit.current(configured).text
    with pytest.raises(InvalidRules, match=message):
        edit.save(configured, bad, "desk-1", "ana@example.org", NOW)
    assert edit.current(configured).text == before
    assert edit.history(configured) == []


def test_a_save_made_from_an_older_version_is_refused(configured):
    edit.save(configured, text(RULES), "desk-1", "ana@example.org", NOW)
    with pytest.raises(edit.StaleRules, match="version 2026-12-06.1 was saved since \\(by ana@example.org"):
        edit.save(configured, text(RULES | {"enabled": False}), "desk-1", "bo@example.org", NOW)
    assert edit.current(configured).enabled is True


def test_two_saves_at_once_from_the_same_version_one_wins(configured):
    results, barrier = [], threading.Barrier(2)

    def save(author):
        barrier.wait()
        try:
            results.append(edit.save(configured, text(RULES), "desk-1", author, NOW).version)
        except edit.StaleRules:
            results.append("stale")

    threads = [threading.Thread(target=save, args=(a,)) for a in ("ana", "bo")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["2026-12-06.1", "stale"]


def test_the_kill_switch_saves_the_rules_in_force_with_enabled_off_then_on(configured):
    off = edit.switch(configured, False, "desk-1", "ana@example.org", NOW)
    assert off.enabled is False and [p.id for p in off.prompts] == ["appeal"]
    on = edit.switch(configured, True, off.version, "ana@example.org", NOW)
    assert on.enabled is True and on.version == "2026-12-06.2"


def test_restore_saves_a_kept_version_again_as_the_newest(configured):
    changed = edit.save(configured, text({"prompts": []}), "desk-1", "ana@example.org", NOW)
    assert load_rules(rules_path(configured)).prompts == ()
    restored = edit.restore(configured, "desk-1", changed.version, "bo@example.org", NOW)
    assert restored.version == "2026-12-06.2" and [p.id for p in restored.prompts] == ["appeal"]
    with pytest.raises(edit.UnknownVersion):
        edit.restore(configured, "../../etc/passwd", restored.version, "bo@example.org", NOW)


def test_the_history_keeps_the_newest_versions_only(configured, monkeypatch):
    monkeypatch.setattr(edit, "HISTORY_KEPT", 3)
    version = "desk-1"
    for _ in range(5):
        version = edit.save(configured, text(RULES), version, "ana@example.org", NOW).version
    assert [v.version for v in edit.history(configured)] == ["2026-12-06.5", "2026-12-06.4", "2026-12-06.3"]


def test_a_version_with_odd_characters_is_kept_under_a_safe_name(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(RULES | {"version": "../../x y/é"}))
    config = {"PROMPT_RULES": str(path), "INSTANCE_PATH": str(tmp_path)}
    edit.save(config, text(RULES), "../../x y/é", "ana@example.org", NOW)
    files = sorted(p.name for p in (tmp_path / "rules.history").iterdir())
    assert files == [".._.._x_y__.json", "2026-12-06.1.json"]
    assert edit.kept(config, "../../x y/é").version == "../../x y/é"


def test_a_configured_file_not_made_yet_is_made_by_the_first_save(tmp_path):
    config = {"PROMPT_RULES": str(tmp_path / "new" / "rules.json"), "INSTANCE_PATH": str(tmp_path)}
    assert edit.current(config).version is None
    assert edit.save(config, text(RULES), None, "ana@example.org", NOW).version == "2026-12-06.1"


def test_an_unreadable_file_in_force_can_be_replaced(configured):
    rules_path(configured).write_text("{ broken")
    assert edit.current(configured).version is None
    assert edit.save(configured, text(RULES), None, "ana@example.org", NOW).version == "2026-12-06.1"


@pytest.mark.parametrize("bad, message", [
    ('{"prompts": [], "x": ' + "9" * 5000 + "}", "not JSON: Exceeds the limit"),
    ("[" * 100_000 + "]" * 100_000, "not JSON: maximum recursion depth"),
])
def test_numbers_too_long_and_nesting_too_deep_are_invalid_rules(configured, bad, message):
    with pytest.raises(InvalidRules, match=message):
        edit.save(configured, bad, "desk-1", "ana@example.org", NOW)


def test_a_kept_file_an_engineer_broke_is_left_out_of_the_history(configured):
    edit.save(configured, text(RULES), "desk-1", "ana@example.org", NOW)
    (rules_path(configured).parent / "rules.history" / "broken.json").write_text("[" * 100_000)
    assert [v.version for v in edit.history(configured)] == ["2026-12-06.1", "desk-1"]


def test_saves_in_quick_succession_are_each_read(configured):
    """File times move in ticks of a few milliseconds: saves of the same size inside one are
    still told apart by the loader (each is a new file renamed over the last)."""
    version, tick = "desk-1", 1_700_000_000_000_000_000
    for title in ("aaaa", "bbbb", "cccc", "dddd"):
        rules = {"prompts": [{"id": "appeal", "kind": "membership", "experiment": {"name": "e", "variants": [
            {"id": "e:a", "copy": {"title": title}}]}}]}
        version = edit.save(configured, text(rules), version, "ana@example.org", NOW).version
        os.utime(rules_path(configured), ns=(tick, tick))  # as if every save fell in one tick
        assert load_rules(rules_path(configured)).prompts[0].experiment.variants[0].copy["title"] == title
