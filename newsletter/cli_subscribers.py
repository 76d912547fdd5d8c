"""`newsletter subscribers …`: import, export and count the list; take bounce and complaint
reports in. Shims over newsletter.subscriber_io and newsletter.suppression."""
from __future__ import annotations

import io
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import click
from flask.cli import with_appcontext

from newsletter import db, subscriber_io, suppression
from newsletter.models import utcnow

INPUT = click.Path(exists=True, dir_okay=False, allow_dash=True)
NOT_UTF8 = ("{} is not UTF-8 text: save it as UTF-8 and run the command again "
            "(what was done already is not done twice)")


@click.group("subscribers", help="The Daily Edition list: import, export, counts, bounce reports.")
def subscribers_group() -> None:
    pass


@subscribers_group.command("import", help="Import subscribers from a CSV file (column `email`; "
                           "optional name, state, created_at). No mail is sent unless "
                           "--send-confirmations.")
@click.argument("file", type=INPUT)
@click.option("--confirmed", is_flag=True,
              help="Add new addresses as confirmed, recording the import as their consent "
                   "(only when their readers agreed to the Daily Edition elsewhere).")
@click.option("--send-confirmations", is_flag=True,
              help="Send each new pending address the double opt-in mail a sign-up gets.")
@with_appcontext
def import_command(file: str, confirmed: bool, send_confirmations: bool) -> None:
    if confirmed and send_confirmations:
        raise click.UsageError("--send-confirmations is for pending imports, not --confirmed ones.")
    session = db.session()
    source_name = "stdin" if file == "-" else Path(file).name
    with _reading(file) as stream:
        report = subscriber_io.import_csv(session, stream, confirmed, utcnow(),
                                          source_name=source_name, checkpoint=session.commit,
                                          send_confirmations=send_confirmations)
    session.commit()
    notes = [(line, f"invalid: {message}") for line, message in report.invalid]
    notes += [(line, f"skipped: {why}") for line, why in report.skipped_lines]
    for line, note in sorted(notes):
        click.echo(f"line {line}: {note}", err=True)
    click.echo(f"added {report.added}, updated {report.updated}, skipped {report.skipped}, "
               f"invalid {len(report.invalid)}")
    if report.invalid:
        raise click.exceptions.Exit(1)


@subscribers_group.command("export", help="Write every subscriber, consent records included, "
                           "to a CSV file (`-` for standard output).")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, allow_dash=True))
@with_appcontext
def export_command(file: str) -> None:
    session = db.session()
    if file == "-":
        written = subscriber_io.export_csv(session, sys.stdout)
        click.echo(f"exported {written} subscribers", err=True)
        return
    written = _write_privately(Path(file), lambda f: subscriber_io.export_csv(session, f))
    click.echo(f"exported {written} subscribers to {file}")


@subscribers_group.command("count", help="Subscribers by state, and the suppressed addresses.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def count_command(as_json: bool) -> None:
    counts = suppression.counts(db.session())
    if as_json:
        click.echo(json.dumps(counts))
        return
    for name, number in counts.items():
        click.echo(f"{name:<14}{number:>9}")


@subscribers_group.command("reports", help="Take a bounce and complaint report file in "
                           "(docs/operations.md) and apply the suppression rules.")
@click.argument("file", type=INPUT)
@click.option("--format", "format_", type=click.Choice(suppression.FORMATS),
              help="Default: jsonl for a .jsonl or .ndjson file, else csv.")
@with_appcontext
def reports_command(file: str, format_: str | None) -> None:
    session = db.session()
    format_ = format_ or ("jsonl" if Path(file).suffix.lower() in (".jsonl", ".ndjson") else "csv")
    with _reading(file) as stream:
        summary = suppression.apply_reports(
            session, suppression.parse_reports(stream, format_), checkpoint=session.commit)
    session.commit()
    for error in summary.invalid:
        click.echo(f"line {error.where}: {error.message}", err=True)
    click.echo(f"processed {summary.processed}, duplicates {summary.duplicates}, "
               f"suppressed {summary.suppressed}, unsubscribed {summary.unsubscribed}, "
               f"invalid {len(summary.invalid)}")
    if summary.invalid:
        raise click.exceptions.Exit(1)


@contextmanager
def _reading(file: str):
    """The file (or stdin) as UTF-8 text for csv; file-level problems become clean errors."""
    if file == "-":
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    else:
        stream = open(file, encoding="utf-8-sig", newline="")
    try:
        yield stream
    except UnicodeDecodeError:
        raise click.ClickException(NOT_UTF8.format(file)) from None
    except (subscriber_io.ImportFileError, suppression.InvalidReportFile) as e:
        raise click.ClickException(f"{file}: {e}") from None
    finally:
        if file == "-":
            stream.detach()  # leave stdin open for whoever owns it
        else:
            stream.close()


def _write_privately(path: Path, write) -> int:
    """Run write(f) on a new file only its owner can read, moved into `path` when done."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            result = write(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result
