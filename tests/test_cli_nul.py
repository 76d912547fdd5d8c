"""Every command that takes a string from an operator, given a NUL in it (PostgreSQL refuses NUL
in text: a query or an INSERT holding one is a DataError): a clear error on standard error and
an exit status other than 0, never a traceback. Run it on PostgreSQL too
(NEWSLETTER_TEST_DATABASE_URL): SQLite takes NUL and hides these.

A shell cannot pass a NUL in an argument (execve's strings end at one), but files, standard
input and other programs calling the commands' functions can; CliRunner passes it as given."""
from __future__ import annotations

import pytest

from newsletter import db
from tests.factories import make_article
from tests.support.console import PASSWORD, make_operator

NUL_ADDRESS = "desk\x00@example.org"


@pytest.fixture
def story(app):
    with app.app_context():
        make_article(db.session(), slug="story")
        db.session().commit()


@pytest.fixture
def operator(app):
    make_operator(app)


def refused(result, *words: str) -> None:
    """Exit status not 0, the reason on standard error, no traceback."""
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.mark.parametrize("args, words", [
    pytest.param(["operator", "create", NUL_ADDRESS], ["single line"], id="operator-create"),
    pytest.param(["operator", "token", NUL_ADDRESS], ["No operator"], id="operator-token"),
    pytest.param(["operator", "revoke-all", NUL_ADDRESS], ["No operator"], id="operator-revoke-all"),
    pytest.param(["operator", "revoke", "nlop_\x00"], ["unknown or revoked"], id="operator-revoke"),
    pytest.param(["edition", "create", "--article", "story\x00"], ["no article has the slug"],
                 id="edition-create-article"),
    pytest.param(["edition", "create", "--article", "story", "--article", "\x00"], ["no article has the slug"],
                 id="edition-create-second-article"),
    pytest.param(["edition", "create", "--date", "2026-11-25\x00"], ["Invalid value"], id="edition-create-date"),
    pytest.param(["ingest", "story\x00.txt"], ["cannot hold a NUL"], id="ingest-path"),
    pytest.param(["ingest", "https://example.com/feed\x00.xml"], ["cannot hold a NUL"], id="ingest-url"),
])
def test_a_nul_in_an_argument_is_a_clear_error(runner, story, operator, args, words):
    refused(runner.invoke(args=args, input=PASSWORD + "\n"), *words)


def test_a_nul_in_a_token_read_from_standard_input_is_a_clear_error(runner, operator):
    refused(runner.invoke(args=["operator", "revoke", "-"], input="nlop_\x00abc\n"), "unknown or revoked")


def test_a_nul_in_a_password_is_taken_as_any_character(runner, app):
    # Only its scrypt hash is stored, and the console's form can send the same password.
    result = runner.invoke(args=["operator", "create", "nul@example.org"], input=f"{PASSWORD}\x00\n")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("text", [
    "email,name\ndesk\x00@example.org,Desk\n",
    "email,name\ndesk@example.org,De\x00sk\n",
    "email,state\ndesk@example.org,confirmed\x00\n",
    "email,created_at\ndesk@example.org,2026-11-25\x00\n",
])
def test_a_nul_in_an_import_file_makes_that_line_invalid(runner, tmp_path, text):
    path = tmp_path / "list.csv"
    path.write_text(text, encoding="utf-8")
    refused(runner.invoke(args=["subscribers", "import", str(path)]), "line 2: invalid")


@pytest.mark.parametrize("text, words", [
    ("email,type\ndesk\x00@example.org,hard\n", ["line 2"]),
    ("email,type\ndesk@example.org,hard\x00\n", ["line 2"]),
    ("email,type,at\ndesk@example.org,hard,2026-11-25\x00\n", ["line 2"]),
])
def test_a_nul_in_a_report_file_makes_that_line_invalid(runner, tmp_path, text, words):
    path = tmp_path / "reports.csv"
    path.write_text(text, encoding="utf-8")
    refused(runner.invoke(args=["subscribers", "reports", str(path)]), *words)


def test_a_nul_in_a_reports_detail_is_dropped(runner, tmp_path):
    path = tmp_path / "reports.jsonl"
    path.write_text('{"email": "desk@example.org", "type": "hard", "detail": "550\\u0000 gone"}\n')
    result = runner.invoke(args=["subscribers", "reports", str(path)])
    assert result.exit_code == 0, result.output
    assert "suppressed 1" in result.stdout


def test_a_nul_in_a_feed_file_is_an_error_for_that_entry(runner, tmp_path):
    path = tmp_path / "feed.xml"
    path.write_text('<rss version="2.0"><channel><title>t</title>'
                    "<item><title>Bad&#0; one</title><guid>b-1</guid><description>Text.</description></item>"
                    "<item><title>Good one</title><guid>g-1</guid><description>Text.</description></item>"
                    "</channel></rss>")
    result = runner.invoke(args=["ingest", str(path)])
    refused(result, "NUL")
    assert result.stdout == "good-one\n"
