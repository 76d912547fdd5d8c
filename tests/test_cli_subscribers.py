"""`newsletter subscribers import|export|count|reports` through the command line."""
from __future__ import annotations

import csv
import io
import json
import stat

import pytest
from sqlalchemy import select

from newsletter import db
from newsletter.models import BounceEvent, ConsentRecord, Subscriber, Suppression


def invoke(runner, *args, input=None):
    return runner.invoke(args=["subscribers", *map(str, args)], input=input)


def write(path, text: str, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def rows(app, model, *columns):
    with app.app_context():
        query = select(*columns) if columns else select(model)
        return db.session().execute(query).all() if columns else db.session().scalars(query).all()


def states(app) -> dict[str, str]:
    return dict(rows(app, Subscriber, Subscriber.email, Subscriber.state))


# ---------------------------------------------------------------- import

def test_import_prints_counts_and_numbered_invalid_lines(runner, app, tmp_path):
    path = write(tmp_path / "list.csv", "email,name\na@example.org,Ann\nnope,\nb@example.org,Bob\n")
    result = invoke(runner, "import", path)
    assert result.exit_code == 1
    assert result.stdout == "added 2, updated 0, skipped 0, invalid 1\n"
    assert result.stderr.startswith("line 3: invalid: Enter a valid email address")
    assert states(app) == {"a@example.org": "pending", "b@example.org": "pending"}


def test_import_again_adds_nothing(runner, app, tmp_path):
    path = write(tmp_path / "list.csv", "email\na@example.org\nb@example.org\n")
    assert invoke(runner, "import", path).stdout == "added 2, updated 0, skipped 0, invalid 0\n"
    result = invoke(runner, "import", path)
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout == "added 0, updated 0, skipped 2, invalid 0\n"


def test_import_confirmed_records_the_file_as_consent(runner, app, tmp_path):
    path = write(tmp_path / "from-old-provider.csv", "email\na@example.org\n")
    result = invoke(runner, "import", path, "--confirmed")
    assert result.exit_code == 0, result.output
    assert states(app) == {"a@example.org": "confirmed"}
    [(action, source, page)] = rows(app, ConsentRecord, ConsentRecord.action, ConsentRecord.source,
                                    ConsentRecord.page)
    assert (action, source, page) == ("import", "import", "from-old-provider.csv")


def test_import_names_skipped_suppressed_lines(runner, app, tmp_path):
    write(tmp_path / "bounces.csv", "email,type\nb@example.org,hard\n")
    assert invoke(runner, "reports", tmp_path / "bounces.csv").exit_code == 0
    path = write(tmp_path / "list.csv", "email\na@example.org\nB@example.org\na@example.org\n")
    result = invoke(runner, "import", path)
    assert result.exit_code == 0
    assert result.stdout == "added 1, updated 0, skipped 2, invalid 0\n"
    assert result.stderr.splitlines() == [
        "line 3: skipped: the address is suppressed (bounced, complained or erased)",
        "line 4: skipped: duplicate of an earlier line"]


def test_import_from_standard_input(runner, app):
    result = invoke(runner, "import", "-", input="email\nüser@exämple.org\n")
    assert result.exit_code == 0, result.output
    assert states(app) == {"üser@exämple.org": "pending"}


def test_import_without_an_email_column_says_so(runner, app, tmp_path):
    path = write(tmp_path / "list.csv", "address\na@example.org\n")
    result = invoke(runner, "import", path)
    assert result.exit_code == 1 and result.stdout == ""
    assert "must name the columns, one of them `email`" in result.stderr


def test_import_of_a_file_that_is_not_utf8_says_so(runner, app, tmp_path):
    path = write(tmp_path / "list.csv", "email,name\na@example.org,Jörg\n", encoding="latin-1")
    result = invoke(runner, "import", path)
    assert result.exit_code == 1 and "is not UTF-8 text" in result.stderr


def test_import_of_a_missing_file_is_a_usage_error(runner, tmp_path):
    result = invoke(runner, "import", tmp_path / "nowhere.csv")
    assert result.exit_code == 2 and "does not exist" in result.stderr


@pytest.mark.slow
def test_import_can_send_the_double_opt_in_mail(runner, app, worker, smtp_server, tmp_path):
    worker()
    write(tmp_path / "old.csv", "email\nknown@example.org\n")
    invoke(runner, "import", tmp_path / "old.csv")
    write(tmp_path / "bounce.csv", "email,type\nbounced@example.org,hard\n")
    invoke(runner, "reports", tmp_path / "bounce.csv")
    path = write(tmp_path / "list.csv", "email\nknown@example.org\nbounced@example.org\n"
                                        "new@example.org\nnext@example.org\n")
    result = invoke(runner, "import", path, "--send-confirmations")
    assert result.stdout == "added 2, updated 0, skipped 2, invalid 0\n"
    for address in ("new@example.org", "next@example.org"):
        [mail] = smtp_server.wait_for(address)
        assert mail["Subject"].startswith("Confirm your subscription")
        assert states(app)[address] == "pending"
    # Mail for the skipped rows, had it been queued, would have been queued first.
    assert sorted(rcpt for rcpt, _ in smtp_server.messages) == ["new@example.org",
                                                                "next@example.org"]


def test_send_confirmations_is_not_for_confirmed_imports(runner, app, tmp_path):
    path = write(tmp_path / "list.csv", "email\na@example.org\n")
    result = invoke(runner, "import", path, "--confirmed", "--send-confirmations")
    assert result.exit_code == 2 and "not --confirmed" in result.stderr
    assert states(app) == {}


# ---------------------------------------------------------------- export

def test_export_to_a_private_file_and_back(runner, app, tmp_path):
    write(tmp_path / "list.csv", "email,name\na@example.org,Ann\nb@example.org,\n")
    invoke(runner, "import", tmp_path / "list.csv", "--confirmed")
    target = tmp_path / "export.csv"
    result = invoke(runner, "export", target)
    assert result.exit_code == 0 and result.stdout == f"exported 2 subscribers to {target}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    exported = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
    assert [(r["email"], r["name"], r["state"]) for r in exported] == [
        ("a@example.org", "Ann", "confirmed"), ("b@example.org", "", "confirmed")]
    assert json.loads(exported[0]["consent"])[0]["action"] == "import"
    assert not list(tmp_path.glob(".export.csv*"))  # no temporary file left behind

    again = invoke(runner, "import", target, "--confirmed")
    assert again.stdout == "added 0, updated 0, skipped 2, invalid 0\n"


def test_export_to_standard_output(runner, app, tmp_path):
    write(tmp_path / "list.csv", "email\na@example.org\n")
    invoke(runner, "import", tmp_path / "list.csv")
    result = invoke(runner, "export", "-")
    assert result.exit_code == 0 and result.stderr == "exported 1 subscribers\n"
    [row] = csv.DictReader(io.StringIO(result.stdout, newline=""))
    assert (row["email"], row["state"], row["suppressed"]) == ("a@example.org", "pending", "false")


# ---------------------------------------------------------------- count

def test_count_by_state_with_the_suppressed(runner, app, tmp_path):
    write(tmp_path / "list.csv", "email\na@example.org\nb@example.org\n")
    invoke(runner, "import", tmp_path / "list.csv")
    write(tmp_path / "r.jsonl", '{"email": "a@example.org", "type": "complaint"}\n')
    invoke(runner, "reports", tmp_path / "r.jsonl")
    result = invoke(runner, "count", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"pending": 1, "confirmed": 0, "unsubscribed": 1,
                                         "suppressed": 1}
    table = invoke(runner, "count").stdout.splitlines()
    assert [line.split() for line in table] == [
        ["pending", "1"], ["confirmed", "0"], ["unsubscribed", "1"], ["suppressed", "1"]]


# ---------------------------------------------------------------- reports

REPORTS_CSV = ("email,type,at,detail\n"
               "hard@example.org,hard,2025-11-01T00:00:00Z,550 no such user\n"
               "soft@example.org,soft,2025-11-01T00:00:00Z,\n"
               "soft@example.org,soft,2025-11-05T00:00:00Z,\n"
               "broken,hard,,\n"
               "soft@example.org,soft,2025-11-20T00:00:00Z,mailbox full\n"
               "angry@example.org,complaint,2025-11-02T00:00:00Z,\n"
               "x@example.org,hard,the other day,\n")


def test_reports_apply_good_lines_and_name_bad_ones(runner, app, tmp_path):
    write(tmp_path / "list.csv", "email\nangry@example.org\n")
    invoke(runner, "import", tmp_path / "list.csv", "--confirmed")
    path = write(tmp_path / "reports.csv", REPORTS_CSV)
    result = invoke(runner, "reports", path)
    assert result.exit_code == 1
    assert result.stdout == ("processed 5, duplicates 0, suppressed 3, unsubscribed 1, "
                             "invalid 2\n")
    assert result.stderr.splitlines()[0].startswith("line 5: Enter a valid email address")
    assert result.stderr.splitlines()[1].startswith("line 8: at is not an ISO 8601 time")
    reasons = sorted(reason for (reason,) in rows(app, Suppression, Suppression.reason))
    assert reasons == ["complaint", "hard_bounce", "soft_bounces"]
    assert states(app) == {"angry@example.org": "unsubscribed"}

    again = invoke(runner, "reports", path)
    assert again.stdout == "processed 5, duplicates 5, suppressed 0, unsubscribed 0, invalid 2\n"
    assert len(rows(app, BounceEvent)) == 5


def test_reports_as_json_lines(runner, app, tmp_path):
    text = ('{"email": "a@example.org", "type": "bounce", "bounce_type": "Permanent"}\n'
            '{"email": "b@example.org", "type": "soft", "at": "2025-11-01T10:00:00Z"}\n')
    for name, args in [("r.jsonl", []), ("r.ndjson", []), ("r.txt", ["--format", "jsonl"])]:
        result = invoke(runner, "reports", write(tmp_path / name, text), *args)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("processed 2, ")
    assert rows(app, Suppression, Suppression.reason) == [("hard_bounce",)]


def test_reports_without_a_header_say_so(runner, app, tmp_path):
    result = invoke(runner, "reports", write(tmp_path / "r.csv", "a@example.org,hard\n"))
    assert result.exit_code == 1 and "must name the columns: email,type" in result.stderr


def test_reports_from_standard_input(runner, app):
    result = invoke(runner, "reports", "-", "--format", "jsonl",
                    input='{"email": "a@example.org", "type": "hard"}\n')
    assert result.exit_code == 0 and result.stdout.startswith("processed 1, duplicates 0, suppressed 1")
