"""`newsletter prompts …`: the prompt rules in force, their saved versions, and what each
variant earned. Shims over newsletter.prompt_rules, prompt_rules_edit and prompt_report."""
from __future__ import annotations

import getpass
import json

import click
from flask import current_app
from flask.cli import with_appcontext

from newsletter import db, prompt_report
from newsletter import prompt_rules_edit as edit
from newsletter.models import utcnow
from newsletter.prompt_rules import InvalidRules, load_rules, rules_path
from newsletter.redis_url import client

# convert: every conversion of the bucket's readers (intention to treat); by click: those
# through the appeal's own button.
HEADER = (f"{'variant':34} {'readers':>8} {'shown':>7} {'seen':>7} {'clicks':>7} {'dismiss':>7} "
          f"{'convert':>7} {'by click':>8} {'rate':>7}  95% interval")


@click.group("prompts", help="The membership prompt: its rules and its results.")
def prompts_group() -> None:
    pass


@prompts_group.command("check", help="Read the rules file and print its version and prompts.")
@with_appcontext
def check_command() -> None:
    rules = _rules()
    click.echo(f"{rules_path(current_app.config)}: version {rules.version}, "
               f"{'on' if rules.enabled else 'OFF (kill switch)'}")
    for prompt in rules.prompts:
        variants = len(prompt.experiment.variants) if prompt.experiment else 0
        click.echo(f"  {prompt.priority:4d} {prompt.id} ({prompt.kind}), {variants} variant(s)"
                   f"{'' if prompt.enabled else ', disabled'}")


@prompts_group.command("save", help="Check FILE (the rules as JSON; - for stdin) and save it as the rules' "
                       "new version, as the console's editor does.")
@click.argument("file", type=click.File("rb"))
@click.option("--based-on", metavar="VERSION", help="The version FILE was made from (default: FILE's own "
              "`version`); refused when another is in force. A FILE without one replaces whatever is.")
@with_appcontext
def save_command(file, based_on: str | None) -> None:
    try:
        text = file.read().decode("utf-8")
    except UnicodeDecodeError as error:
        raise click.ClickException(f"not saved: {file.name} is not UTF-8 text (byte {error.start})") from error
    made_from = based_on or _version_in(text)

    def action(config, latest: edit.Current):
        if made_from is not None and made_from != latest.version:
            raise edit.StaleRules(latest)
        return edit.save(config, text, latest.fingerprint, _author(), utcnow())
    _saved(action)


@prompts_group.command("switch", help="The kill switch: every prompt on or off (a new version of the rules).")
@click.argument("state", type=click.Choice(["on", "off"]))
@with_appcontext
def switch_command(state: str) -> None:
    _saved(lambda config, latest: edit.switch(config, state == "on", latest.fingerprint, _author(), utcnow()))


@prompts_group.command("restore", help="Save a kept VERSION again as the rules' newest.")
@click.argument("version")
@with_appcontext
def restore_command(version: str) -> None:
    _saved(lambda config, latest: edit.restore(config, version, latest.fingerprint, _author(), utcnow()))


@prompts_group.command("history", help="The kept versions of the rules, newest first.")
@with_appcontext
def history_command() -> None:
    try:
        latest, entries = edit.current(current_app.config).version, edit.history(current_app.config)
    except OSError as error:
        raise click.ClickException(f"the kept versions cannot be read: {error}") from error
    for entry in entries:
        mark = " (in force)" if entry.version == latest else ""
        click.echo(f"{entry.version:24} {entry.saved_at or '-':26} {entry.saved_by or '-':32} "
                   f"prompts {'on' if entry.enabled else 'off'}{mark}")


def _saved(action) -> None:
    """`action(config, rules in force)`, a save; its result, or why nothing was saved."""
    config = current_app.config
    try:
        rules = action(config, edit.current(config))
    except (InvalidRules, edit.UnknownVersion, edit.StaleRules, OSError) as error:
        raise click.ClickException(f"not saved: {error}") from error
    click.echo(f"saved version {rules.version} to {edit.editable_path(config)}: prompts "
               f"{'on' if rules.enabled else 'OFF (kill switch)'}")


def _version_in(text: str) -> str | None:
    document = edit.document(text)
    return str(document["version"]) if isinstance(document, dict) and "version" in document else None


def _author() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a container's user with no name
        return "cli"


@prompts_group.command("report", help="Per variant: readers, impressions, events, conversions (and those "
                       "by click), conversion rate with a 95% Wilson interval.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, as GET /api/v1/prompts/report.")
@with_appcontext
def report_command(as_json: bool) -> None:
    rules = _rules()
    if not current_app.config["REDIS_URL"]:
        raise click.ClickException("NEWSLETTER_REDIS_URL is not set: the counters live in Redis")
    store, session = client(current_app.config["REDIS_URL"]), db.session()
    try:
        rows = prompt_report.report(session, store, rules)
        other = prompt_report.other_conversions(session, rules)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(prompt_report.as_json(rules, rows, other), indent=2))
        return
    click.echo(f"rules version {rules.version}")
    click.echo(HEADER)
    for row in rows:
        click.echo(table_line(row))
    for variant, n in other.items():
        click.echo(f"{variant:34} {'':>8} {'':>7} {'':>7} {'':>7} {'':>7} {n:7d}  (no prompt in the rules)")


def table_line(row: prompt_report.VariantRow) -> str:
    name = row.variant + (" (control)" if row.control else "")
    return (f"{name:34} {row.readers:8d} {row.impressions:7d} {row.seen:7d} {row.clicks:7d} "
            f"{row.dismissals:7d} {row.conversions:7d} {row.clicks_converted:8d} {row.rate:7.2%}  "
            f"{row.low:.2%}–{row.high:.2%}")


def _rules():
    try:
        return load_rules(rules_path(current_app.config))
    except (OSError, InvalidRules) as error:
        raise click.ClickException(f"prompt rules: {error}") from error
