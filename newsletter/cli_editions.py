"""`newsletter edition …`: create, send (and watch), follow and control editions.

Shims over newsletter.editions and newsletter.delivery: `send` calls the same
`delivery.start_send` as the console's Send button and `POST /api/v1/editions/<id>/send`.
Errors go to standard error with exit status 1.
"""
from __future__ import annotations

import json
import sys
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from newsletter import db, delivery, editions

# A send is over when nothing is pending and no worker will take up anything more.
FINISHED = ("sent", "cancelled")


@click.group("edition", help="Editions of the Daily Edition: create, send, follow, control.")
def edition_group() -> None:
    pass


@edition_group.command("create", help="Create a draft edition and print its id. Without "
                       "--article it holds the stories published that day (today in TIMEZONE).")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="The edition's date (default: today in TIMEZONE).")
@click.option("--article", "slugs", multiple=True, metavar="SLUG",
              help="A story, by slug; repeat in the order wanted.")
@click.option("--latest", is_flag=True, help="When the day has no stories, take the newest ones.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id": …}.')
@with_appcontext
def create_command(day, slugs: tuple[str, ...], latest: bool, as_json: bool) -> None:
    session = db.session()
    config = current_app.config
    try:
        edition = editions.create_edition(
            session, day=day.date() if day else None, slugs=list(slugs) or None,
            count=int(config["EDITION_STORIES"]), tz=config["TIMEZONE"],
            publication=config["PUBLICATION_NAME"], or_latest=latest)
    except editions.ArticleNotFound as e:
        raise click.ClickException(f"no article has the slug {e.args[0]!r}") from None
    except editions.NoStories as e:
        raise click.ClickException(f"{e} (name stories with --article, or add --latest)") from None
    session.commit()
    click.echo(json.dumps({"id": edition.id}) if as_json else edition.id)


@edition_group.command("send", help="Queue the edition's send; a second call changes nothing. "
                       "--wait follows it with a progress bar until every delivery has ended.")
@click.argument("edition_id", type=int)
@click.option("--wait", is_flag=True, help="Show the progress; exit 0 once nothing is pending.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="With --wait: give up (exit 2) after this long.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=0.5, show_default=True,
              metavar="SECONDS", help="With --wait: how often to look.")
@with_appcontext
def send_command(edition_id: int, wait: bool, timeout: float | None, interval: float) -> None:
    session = db.session()
    done = _controlled(session, edition_id, "send")
    session.commit()
    if done.result:
        click.echo(f"edition {edition_id}: send queued")
    elif done.before == "cancelled":
        raise click.ClickException(f"edition {edition_id} was cancelled: create a new edition to send")
    else:
        click.echo(f"edition {edition_id} is {done.before} already: nothing changed")
    if wait:
        raise SystemExit(wait_for_send(session, edition_id, interval, timeout))


def wait_for_send(session, edition_id: int, interval: float, timeout: float | None) -> int:
    """Draw the progress until the send is over (0) or `timeout` seconds passed (2)."""
    display = ProgressDisplay(sys.stderr)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        session.close()  # a fresh snapshot and no connection held between looks
        progress = delivery.progress(session, edition_id)
        over = progress["state"] in FINISHED and not progress["pending"]
        if over or (deadline is not None and time.monotonic() >= deadline):
            display.finish(progress)
            break
        display.show(progress)
        time.sleep(interval)
    if not over:
        click.echo(f"edition {edition_id}: still {progress['state']} after {timeout:g} s", err=True)
        return 2
    return 0


@edition_group.command("status", help="The edition's state and delivery counts.")
@click.argument("edition_id", type=int)
@click.option("--json", "as_json", is_flag=True,
              help='Print {"id", "state", "total", "sent", "failed", "pending", …}.')
@with_appcontext
def status_command(edition_id: int, as_json: bool) -> None:
    progress = _progress(db.session(), edition_id)
    if as_json:
        click.echo(json.dumps(progress))
        return
    for key, value in progress.items():
        click.echo(f"{key:<12} {'' if value is None else value}")


@edition_group.command("pause", help="Pause a running send; the rest stays pending.")
@click.argument("edition_id", type=int)
@with_appcontext
def pause_command(edition_id: int) -> None:
    _control(edition_id, "pause")


@edition_group.command("resume", help="Resume a paused send.")
@click.argument("edition_id", type=int)
@with_appcontext
def resume_command(edition_id: int) -> None:
    _control(edition_id, "resume")


@edition_group.command("cancel", help="Cancel a draft or a send; what is pending is skipped.")
@click.argument("edition_id", type=int)
@with_appcontext
def cancel_command(edition_id: int) -> None:
    _control(edition_id, "cancel")


@edition_group.command("resend-failed", help="Try the failed deliveries again.")
@click.argument("edition_id", type=int)
@with_appcontext
def resend_failed_command(edition_id: int) -> None:
    _control(edition_id, "resend-failed")


# ---------------------------------------------------------------- the progress display

class ProgressDisplay:
    """One line redrawn in place on a terminal; elsewhere (a log, a pipe) a line every
    EVERY seconds, so that logs stay readable."""

    EVERY = 5.0

    def __init__(self, out, tty: bool | None = None, clock=time.monotonic) -> None:
        self.out, self.clock = out, clock
        self.tty = out.isatty() if tty is None else tty
        self.width, self.last = 0, None

    def show(self, progress: dict) -> None:
        line = progress_line(progress)
        if self.tty:
            self.out.write("\r" + line.ljust(self.width))
            self.width = len(line)
        elif self.last is None or self.clock() - self.last >= self.EVERY:
            self.out.write(line + "\n")
            self.last = self.clock()
        self.out.flush()

    def finish(self, progress: dict) -> None:
        line = progress_line(progress)
        self.out.write(("\r" + line.ljust(self.width) if self.tty else line) + "\n")
        self.out.flush()


def progress_line(p: dict, width: int = 24) -> str:
    """`edition 7 sending [#####-----]  50%  sent 5  failed 0  pending 5  2.5 msg/s  ETA 0:02`."""
    head = f"edition {p['id']} {p['state']}"
    if not p["total"] and p["state"] in delivery.ACTIVE:
        return f"{head}: planning the deliveries…"
    ended = p["total"] - p["pending"]
    share = ended / p["total"] if p["total"] else 1.0
    bar = "#" * round(share * width)
    parts = [f"{head} [{bar.ljust(width, '-')}] {share:4.0%}", f"sent {p['sent']}",
             f"failed {p['failed']}", f"pending {p['pending']}"]
    if p.get("skipped"):
        parts.append(f"skipped {p['skipped']}")
    if p["pending"]:
        parts += [f"{p.get('rate') or 0:.1f} msg/s", f"ETA {duration(p.get('eta_seconds'))}"]
    return "  ".join(parts)


def duration(seconds: float | None) -> str:
    """0:42, 12:05, 1:02:03; --:-- when unknown."""
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


# ---------------------------------------------------------------- helpers

DONE = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}


def _controlled(session, edition_id: int, action: str) -> delivery.Controlled:
    try:
        return delivery.control(session, edition_id, action, delivery.SendSettings.from_config(current_app.config))
    except editions.EditionNotFound:
        raise click.ClickException(f"no edition has the id {edition_id}") from None


def _control(edition_id: int, action: str) -> None:
    session = db.session()
    done = _controlled(session, edition_id, action)
    session.commit()
    if action == "resend-failed":
        click.echo(f"edition {edition_id}: {done.result} failed deliveries queued again")
    elif done.result:
        click.echo(f"edition {edition_id}: {DONE[action]}")
    else:
        click.echo(f"edition {edition_id} is {done.before}: nothing changed")


def _progress(session, edition_id: int) -> dict:
    try:
        return delivery.progress(session, edition_id)
    except editions.EditionNotFound:
        raise click.ClickException(f"no edition has the id {edition_id}") from None
