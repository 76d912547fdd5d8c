"""Saving the prompt rules (newsletter.prompt_rules_edit) on real files in a temporary folder:
versions, the kept history, refusals that leave the file as it was, concurrent saves, file
modes and encodings."""
from __future__ import annotations

import json
import os
import stat
import threading
import time
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
    path.chmod(0o644)
    return {"PROMPT_RULES": str(path), "INSTANCE_PATH": str(tmp_path / "instance")}


def text(rules: dict) -> str:
    return json.dumps(rules, indent=2)


def made_from(config) -> str:
    """What an editor opened now would name as the rules it was made from."""
    return edit.current(config).fingerprint


def save(config, rules: dict, author: str = "ana@example.org", now: datetime = NOW):
    return edit.save(config, text(rules), made_from(config), author, now)


def test_the_first_save_goes_to_the_instance_folder_and_keeps_the_shipped_rules(config):
    shipped = load_rules(DEFAULT_PATH).version
    assert rules_path(config) == DEFAULT_PATH
    assert save(config, RULES, "desk@example.org").version == "2026-12-06.1"
    assert rules_path(config) == edit.editable_path(config) == edit.editable_path(config).parent / "prompt_rules.json"
    assert load_rules(DEFAULT_PATH).version == shipped  # the package's own file, untouched
    assert [v.version for v in edit.history(config)] == ["2026-12-06.1", shipped]


def test_a_save_records_who_and_when_and_numbers_the_day(configured):
    first = save(configured, RULES)
    second = save(configured, RULES | {"enabled": False}, "bo@example.org", NOW + timedelta(hours=1))
    assert (first.version, second.version) == ("2026-12-06.1", "2026-12-06.2")
    latest = edit.current(configured)
    assert (latest.version, latest.saved_by, latest.saved_at, latest.enabled) == (
        "2026-12-06.2", "bo@example.org", "2026-12-06T10:30:00+00:00", False)
    assert save(configured, RULES, now=NOW + timedelta(days=1)).version == "2026-12-07.1"
    assert [v.version for v in edit.history(configured)] == ["2026-12-07.1", "2026-12-06.2", "2026-12-06.1", "desk-1"]


def test_the_version_and_the_signature_in_the_text_are_the_saves_own(configured):
    save(configured, RULES | {"version": "2030-01-01.9", "saved_by": "someone else", "saved_at": "never"})
    latest = edit.current(configured)
    assert (latest.version, latest.saved_by) == ("2026-12-06.1", "ana@example.org")
    assert save(configured, {"prompts": RULES["prompts"]}).version == "2026-12-06.2"  # none in the text


@pytest.mark.parametrize("bad, message", [
    ("{", r"not JSON: Expecting property name enclosed in double quotes \(line 1, column 2\)"),
    ("[]", "a JSON object"),
    ('{"prompts": [{"id": "a", "kind": "poster"}]}', r"prompts\[0\].kind"),
    ('{"prompt": []}', "unknown key `prompt`"),
    ('{"enabled": false}', "prompts: required"),
    ('{"prompts": [], "x": ' + "9" * 5000 + "}", "not JSON: Exceeds the limit"),
    ("[" * 100_000 + "]" * 100_000, "not JSON: maximum recursion depth"),
    ('{"prompts": [{"id": "a", "kind": "membership", "experiment": {"variants": [{"id": "v", "copy": '
     '{"title": "\\ud800"}}]}}]}', "not text: a \\\\u escape holds '\\\\ud800'"),
    ("x" * (edit.MAX_BYTES + 1), "larger than 256 kB"),
])
def test_invalid_rules_are_refused_and_the_file_is_as_it_was(configured, bad, message):
    before = edit.current(configured).text
    with pytest.raises(InvalidRules, match=message):
        edit.save(configured, bad, made_from(configured), "ana@example.org", NOW)
    assert edit.current(configured).text == before
    assert edit.history(configured) == []


def test_a_save_made_from_older_rules_is_refused(configured):
    opened = made_from(configured)
    save(configured, RULES)
    with pytest.raises(edit.StaleRules, match="version 2026-12-06.1 is in force"):
        edit.save(configured, text(RULES | {"enabled": False}), opened, "bo@example.org", NOW)
    assert edit.current(configured).enabled is True


def test_an_engineers_edit_that_kept_the_version_is_not_undone_and_is_kept(configured):
    opened = made_from(configured)
    path = rules_path(configured)
    save(configured, RULES)  # desk-1 is kept in the history
    by_hand = RULES | {"version": "2026-12-06.1", "enabled": False}
    path.write_text(json.dumps(by_hand))  # the same version, other rules
    with pytest.raises(edit.StaleRules):
        edit.save(configured, text(RULES), opened, "ana@example.org", NOW)
    save(configured, RULES)
    kept = [entry for entry in edit.history(configured) if entry.version == "2026-12-06.1"]
    assert sorted(entry.enabled for entry in kept) == [False, True]


def test_two_saves_at_once_from_the_same_rules_one_wins(configured, monkeypatch):
    opened, results, barrier = made_from(configured), [], threading.Barrier(2)
    read = edit.current

    def slow_current(config):  # widens the window between reading the rules and writing them
        latest = read(config)
        time.sleep(0.2)
        return latest

    monkeypatch.setattr(edit, "current", slow_current)

    def attempt(author):
        barrier.wait()
        try:
            results.append(edit.save(configured, text(RULES), opened, author, NOW).version)
        except edit.StaleRules:
            results.append("stale")

    threads = [threading.Thread(target=attempt, args=(a,)) for a in ("ana", "bo")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["2026-12-06.1", "stale"]


def test_the_kill_switch_saves_the_rules_in_force_with_enabled_off_then_on(configured):
    off = edit.switch(configured, False, made_from(configured), "ana@example.org", NOW)
    assert off.enabled is False and [p.id for p in off.prompts] == ["appeal"]
    on = edit.switch(configured, True, made_from(configured), "ana@example.org", NOW)
    assert on.enabled is True and on.version == "2026-12-06.2"


def test_the_kill_switch_works_when_the_rules_in_force_are_broken(configured):
    rules_path(configured).write_text("{ broken")
    with pytest.raises(InvalidRules, match="cannot be read"):
        edit.switch(configured, True, made_from(configured), "ana@example.org", NOW)
    off = edit.switch(configured, False, made_from(configured), "ana@example.org", NOW)
    assert off.enabled is False and off.prompts == ()


def test_restore_saves_a_kept_version_again_as_the_newest(configured):
    save(configured, {"prompts": []})
    assert load_rules(rules_path(configured)).prompts == ()
    restored = edit.restore(configured, "desk-1", made_from(configured), "bo@example.org", NOW)
    assert restored.version == "2026-12-06.2" and [p.id for p in restored.prompts] == ["appeal"]
    with pytest.raises(edit.UnknownVersion):
        edit.restore(configured, "../../etc/passwd", made_from(configured), "bo@example.org", NOW)


def test_the_history_keeps_the_newest_versions_only(configured, monkeypatch):
    monkeypatch.setattr(edit, "HISTORY_KEPT", 3)
    for _ in range(5):
        save(configured, RULES)
    assert [v.version for v in edit.history(configured)] == ["2026-12-06.5", "2026-12-06.4", "2026-12-06.3"]


def test_a_version_with_odd_characters_is_kept_under_a_safe_name(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(RULES | {"version": "../../x y/é"}))
    config = {"PROMPT_RULES": str(path), "INSTANCE_PATH": str(tmp_path)}
    save(config, RULES)
    assert sorted(p.name for p in (tmp_path / "rules.history").iterdir()) == [".._.._x_y__.json", "2026-12-06.1.json"]
    assert edit.kept(config, "../../x y/é").version == "../../x y/é"


def test_a_configured_file_not_made_yet_is_made_by_the_first_save(tmp_path):
    config = {"PROMPT_RULES": str(tmp_path / "new" / "rules.json"), "INSTANCE_PATH": str(tmp_path)}
    assert edit.current(config).version is None
    assert save(config, RULES).version == "2026-12-06.1"
    assert stat.S_IMODE(os.stat(rules_path(config)).st_mode) == 0o644


def test_a_save_keeps_the_files_mode(configured):
    rules_path(configured).chmod(0o640)
    save(configured, RULES)
    assert stat.S_IMODE(os.stat(rules_path(configured)).st_mode) == 0o640


@pytest.mark.parametrize("content", [b"{ broken", "{\"version\": \"caf\xe9\", \"prompts\": []}".encode("latin-1")])
def test_an_unreadable_file_in_force_is_shown_and_can_be_replaced(configured, content):
    rules_path(configured).write_bytes(content)
    latest = edit.current(configured)
    assert latest.version is None and latest.text
    assert save(configured, RULES).version == "2026-12-06.1"


def test_kept_files_that_cannot_be_read_are_left_out_of_the_history(configured):
    save(configured, RULES)
    folder = rules_path(configured).parent / "rules.history"
    (folder / "broken.json").write_text("[" * 100_000)
    (folder / "latin.json").write_bytes('{"version": "caf\xe9"}'.encode("latin-1"))
    assert [v.version for v in edit.history(configured)] == ["2026-12-06.1", "desk-1"]


def test_saves_in_quick_succession_are_each_read(configured):
    """File times move in ticks of a few milliseconds and a renamed-over file's inode can be
    reused: saves of the same size inside one tick are still told apart (by their content)."""
    tick = 1_700_000_000_000_000_000
    for title in ("aaaa", "bbbb", "cccc", "dddd"):
        save(configured, {"prompts": [{"id": "appeal", "kind": "membership", "experiment": {
            "name": "e", "variants": [{"id": "e:a", "copy": {"title": title}}]}}]})
        os.utime(rules_path(configured), ns=(tick, tick))  # as if every save fell in one tick
        assert load_rules(rules_path(configured)).prompts[0].experiment.variants[0].copy["title"] == title
