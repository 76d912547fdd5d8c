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
