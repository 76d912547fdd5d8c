"""`newsletter prompts check` and `newsletter prompts report [--json]` on the test's database and Redis."""
from __future__ import annotations

import json

from newsletter import prompt_history
from tests.test_prompt_report import membership


def test_check_prints_the_shipped_rules(runner):
    result = runner.invoke(args=["prompts", "check"])
    assert result.exit_code == 0, result.output
    assert "prompt_rules.json: version" in result.output
    assert "membership-appeal (membership), 2 variant(s)" in result.output


def test_a_broken_rules_file_is_named(app, runner, tmp_path):
    path = tmp_path / "rules.json"
    path.write_text('{"version": 1, "prompts": [{"id": "x", "kind": "popup"}]}')
    app.config["PROMPT_RULES"] = str(path)
    result = runner.invoke(args=["prompts", "report"])
    assert result.exit_code == 1 and "prompts[0].kind" in result.output


def test_report_table_and_json(runner, session, broker):
    for n in range(20):
        prompt_history.record_event(broker, f"reader-{n}", "assigned", "appeal-2026-11:journalism")
    membership(session, "appeal-2026-11:journalism")
    membership(session, "appeal-2026-11:journalism", path="assigned")
    membership(session, "gate")
    session.commit()

    table = runner.invoke(args=["prompts", "report"])
    assert table.exit_code == 0, table.output
    assert "convert by click" in table.output.splitlines()[1]
    line = next(row for row in table.output.splitlines() if row.startswith("appeal-2026-11:journalism"))
    assert line.split()[1:2] == ["20"] and line.split()[6:8] == ["2", "1"]
    assert "10.00%" in line and "2.79%–30.10%" in line
    assert "appeal-2026-11:control (control)" in table.output
    assert any(row.startswith("gate") for row in table.output.splitlines())

    document = json.loads(runner.invoke(args=["prompts", "report", "--json"]).output)
    row = next(v for v in document["variants"] if v["variant"] == "appeal-2026-11:journalism")
    assert (row["readers"], row["conversions"], row["clicks_converted"]) == (20, 2, 1)
    assert document["other_conversions"] == {"gate": 1}


def test_save_switch_history_and_restore_from_the_cli(app, runner, tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"version": "desk-1", "prompts": [{"id": "appeal", "kind": "membership"}]}))
    app.config["PROMPT_RULES"] = str(path)
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"prompts": [{"id": "daily", "kind": "newsletter"}]}))

    saved = runner.invoke(args=["prompts", "save", str(new)])
    assert saved.exit_code == 0, saved.output
    version = json.loads(path.read_text())["version"]
    assert f"saved version {version} to {path}: prompts on" in saved.output
    assert json.loads(path.read_text())["saved_by"].startswith("cli:")

    off = runner.invoke(args=["prompts", "switch", "off"])
    assert off.exit_code == 0 and "OFF (kill switch)" in off.output

    history = runner.invoke(args=["prompts", "history"]).output.splitlines()
    assert [line.split()[0] for line in history][-1] == "desk-1" and "(in force)" in history[0]

    restored = runner.invoke(args=["prompts", "restore", "desk-1"])
    assert restored.exit_code == 0, restored.output
    assert [p["id"] for p in json.loads(path.read_text())["prompts"]] == ["appeal"]


def test_the_cli_refuses_bad_rules_and_unknown_versions_and_changes_nothing(app, runner, tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"version": "desk-1", "prompts": []}))
    app.config["PROMPT_RULES"] = str(path)
    bad = runner.invoke(args=["prompts", "save", "-"], input='{"prompts": [{"id": "x", "kind": "popup"}]}')
    assert bad.exit_code == 1 and "not saved: prompts[0].kind" in bad.output
    unknown = runner.invoke(args=["prompts", "restore", "nope"])
    assert unknown.exit_code == 1 and "not saved: no kept version 'nope'" in unknown.output
    assert json.loads(path.read_text()) == {"version": "desk-1", "prompts": []}


def test_the_cli_refuses_a_file_made_from_rules_no_longer_in_force(app, runner, tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"version": "desk-1", "prompts": []}))
    app.config["PROMPT_RULES"] = str(path)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({"version": "desk-1", "prompts": [{"id": "daily", "kind": "newsletter"}]}))
    assert runner.invoke(args=["prompts", "switch", "off"]).exit_code == 0  # someone saves meanwhile

    stale = runner.invoke(args=["prompts", "save", str(edited)])
    assert stale.exit_code == 1 and "not saved: the rules were changed since" in stale.output
    assert json.loads(path.read_text())["prompts"] == []
    in_force = json.loads(path.read_text())["version"]
    assert runner.invoke(args=["prompts", "save", str(edited), "--based-on", in_force]).exit_code == 0
    assert json.loads(path.read_text())["prompts"][0]["id"] == "daily"


def test_the_cli_says_when_a_file_is_not_utf8(app, runner, tmp_path):
    app.config["PROMPT_RULES"] = str(tmp_path / "rules.json")
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"prompts": [], "x": "caf\xe9"}'.encode("latin-1"))
    result = runner.invoke(args=["prompts", "save", str(latin)])
    assert result.exit_code == 1 and "is not UTF-8 text (byte 25)" in result.output
