"""`newsletter edition …`: create, send (with --wait and a real worker), status, control."""
from __future__ import annotations

import io
import json
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from newsletter import db, editions
from newsletter.cli_editions import ProgressDisplay, duration, progress_line
from newsletter.models import Edition
from tests.factories import make_article
from tests.support.delivery import address, make_subscribers, published

PROGRESS_KEYS = {"id", "state", "total", "sent", "failed", "pending"}


def invoke(runner, *args):
    return runner.invoke(args=["edition", *map(str, args)])


@pytest.fixture
def stories(app):
    with app.app_context():
        session = db.session()
        for n, hour in enumerate((6, 7, 8)):
            make_article(session, slug=f"day-{n}", published_at=datetime(2026, 11, 25, hour, tzinfo=timezone.utc))
        make_article(session, slug="older", published_at=datetime(2026, 11, 20, 12, tzinfo=timezone.utc))
        session.commit()


def edition_of(app, edition_id: int) -> tuple[Edition, list[str]]:
    with app.app_context():
        session = db.session()
        edition = session.get(Edition, edition_id)
        return edition, [a.slug for a in editions.edition_articles(session, edition)]


def created_id(runner, *args) -> int:
    result = invoke(runner, "create", *args)
    assert result.exit_code == 0, result.output
    return int(result.stdout)


# ---------------------------------------------------------------- create

def test_create_for_a_date(app, runner, stories):
    edition, slugs = edition_of(app, created_id(runner, "--date", "2026-11-25"))
    assert edition.date == date(2026, 11, 25) and edition.state == "draft"
    assert slugs == ["day-2", "day-1", "day-0"]


def test_create_from_slugs_in_their_order(app, runner, stories):
    edition_id = created_id(runner, "--date", "2026-11-26", "--article", "older", "--article", "day-1")
    edition, slugs = edition_of(app, edition_id)
    assert slugs == ["older", "day-1"] and edition.date == date(2026, 11, 26)


def test_create_prints_json(runner, stories):
    result = invoke(runner, "create", "--date", "2026-11-25", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"id": 1}


def test_create_with_an_unknown_slug(app, runner, stories):
    result = invoke(runner, "create", "--article", "day-0", "--article", "nope")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no article has the slug 'nope'" in result.stderr
    with app.app_context():
        assert db.session().scalars(select(Edition)).all() == []


def test_create_for_a_day_without_stories(runner, stories):
    result = invoke(runner, "create", "--date", "2026-12-01")
    assert result.exit_code == 1
    assert "no stories published on 2026-12-01 (UTC)" in result.stderr and "--latest" in result.stderr


def test_create_with_latest_takes_the_newest_stories(app, runner, stories):
    _edition, slugs = edition_of(app, created_id(runner, "--date", "2026-12-01", "--latest"))
    assert slugs == ["day-2", "day-1", "day-0", "older"]


def test_create_with_a_bad_date(runner, stories):
    result = invoke(runner, "create", "--date", "25/11/2026")
    assert result.exit_code == 2 and "'25/11/2026' does not match the format '%Y-%m-%d'" in result.stderr


# ---------------------------------------------------------------- status and send

@pytest.fixture
def edition_id(runner, stories):
    return created_id(runner, "--date", "2026-11-25")


def test_status_as_json(runner, edition_id):
    result = invoke(runner, "status", edition_id, "--json")
    assert result.exit_code == 0
    status = json.loads(result.stdout)
    assert PROGRESS_KEYS <= set(status)
    assert {k: status[k] for k in PROGRESS_KEYS} == {"id": edition_id, "state": "draft", "total": 0,
                                                      "sent": 0, "failed": 0, "pending": 0}


def test_status_for_people(runner, edition_id):
    result = invoke(runner, "status", edition_id)
    assert result.exit_code == 0
    assert "state        draft" in result.stdout.splitlines()


def test_an_unknown_edition(runner, stories):
    for command in ("status", "send", "pause", "resume", "cancel", "resend-failed"):
        result = invoke(runner, command, 999)
        assert result.exit_code == 1, command
        assert "no edition has the id 999" in result.stderr


def test_send_twice_plans_once(app, runner, edition_id, broker):
    first = invoke(runner, "send", edition_id)
    assert first.exit_code == 0 and first.stdout == f"edition {edition_id}: send queued\n"
    second = invoke(runner, "send", edition_id)
    assert second.exit_code == 0
    assert second.stdout == f"edition {edition_id} is sending already: nothing changed\n"
    assert [(name, args) for name, args, _ in published(broker)] == [("delivery.plan", [edition_id])]
    assert edition_of(app, edition_id)[0].state == "sending"


def test_a_cancelled_edition_is_not_sent(runner, edition_id, broker):
    assert invoke(runner, "cancel", edition_id).stdout == f"edition {edition_id}: cancelled\n"
    result = invoke(runner, "send", edition_id)
    assert result.exit_code == 1 and "was cancelled" in result.stderr
    assert published(broker) == []


def test_pause_resume_cancel_and_resend_failed(app, runner, edition_id):
    assert invoke(runner, "pause", edition_id).stdout == f"edition {edition_id} is draft: nothing changed\n"
    invoke(runner, "send", edition_id)
    outputs = [invoke(runner, command, edition_id) for command in ("pause", "pause", "resume", "cancel")]
    assert [r.exit_code for r in outputs] == [0, 0, 0, 0]
    assert [r.stdout for r in outputs] == [f"edition {edition_id}: paused\n",
                                          f"edition {edition_id} is paused: nothing changed\n",
                                          f"edition {edition_id}: resumed\n", f"edition {edition_id}: cancelled\n"]
    assert edition_of(app, edition_id)[0].state == "cancelled"
    resent = invoke(runner, "resend-failed", edition_id)
    assert resent.exit_code == 0 and resent.stdout == f"edition {edition_id}: 0 failed deliveries queued again\n"


def test_wait_gives_up_after_its_timeout(runner, edition_id):
    # No worker runs: nothing gets planned.
    result = invoke(runner, "send", edition_id, "--wait", "--timeout", "0.3", "--interval", "0.1")
    assert result.exit_code == 2
    assert f"edition {edition_id} sending: planning the deliveries…" in result.stderr
    assert "still sending after 0.3 s" in result.stderr


@pytest.mark.slow
def test_send_and_wait_with_a_real_worker(app, runner, edition_id, worker, smtp_server):
    with app.app_context():
        make_subscribers(db.session(), 5)
        db.session().commit()
    worker()

    result = invoke(runner, "send", edition_id, "--wait", "--timeout", "240")

    assert result.exit_code == 0, result.stderr
    for n in range(1, 6):
        [mail] = smtp_server.wait_for(address(n), timeout=5)
        assert mail["Subject"].startswith("The Daily Edition — 25 November 2026")
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"edition {edition_id} sent [{'#' * 24}] 100%  sent 5  failed 0  pending 0")
    status = json.loads(invoke(runner, "status", edition_id, "--json").stdout)
    assert (status["state"], status["sent"], status["pending"]) == ("sent", 5, 0)
    # Waiting on a finished send ends at once.
    again = invoke(runner, "send", edition_id, "--wait")
    assert again.exit_code == 0 and "is sent already" in again.stdout


# ---------------------------------------------------------------- the progress display

def progress(**values) -> dict:
    return {"id": 7, "state": "sending", "total": 10, "sent": 4, "failed": 1, "pending": 5, "skipped": 0,
            "rate": 2.5, "eta_seconds": 2} | values


def test_the_progress_line():
    assert progress_line(progress(), width=10) == (
        "edition 7 sending [#####-----]  50%  sent 4  failed 1  pending 5  2.5 msg/s  ETA 0:02")
    assert progress_line(progress(state="sent", sent=9, pending=0, skipped=0), width=4) == (
        "edition 7 sent [####] 100%  sent 9  failed 1  pending 0")
    assert progress_line(progress(state="cancelled", pending=0, skipped=5), width=4) == (
        "edition 7 cancelled [####] 100%  sent 4  failed 1  pending 0  skipped 5")
    assert progress_line(progress(total=0, sent=0, failed=0, pending=0)) == "edition 7 sending: planning the deliveries…"
    assert progress_line(progress(rate=0.0, eta_seconds=None), width=2).endswith("0.0 msg/s  ETA --:--")


def test_durations():
    assert [duration(s) for s in (None, 0, 42, 725, 3723)] == ["--:--", "0:00", "0:42", "12:05", "1:02:03"]


def test_a_terminal_gets_one_line_redrawn():
    out = io.StringIO()
    display = ProgressDisplay(out, tty=True)
    display.show(progress(sent=9, pending=0, failed=1, state="sending", rate=1.0, eta_seconds=0))
    display.show(progress())
    display.finish(progress(state="sent", sent=9, pending=0))
    text = out.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("\n")
    first, second = text.split("\r")[1:3]
    assert len(second) >= len(first)  # a shorter line covers what the longer one drew


def test_a_log_gets_a_line_every_few_seconds():
    out, now = io.StringIO(), [0.0]
    display = ProgressDisplay(out, tty=False, clock=lambda: now[0])
    for second in range(0, 12):
        now[0] = float(second)
        display.show(progress())
    display.finish(progress(state="sent", pending=0, sent=9))
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 4 and lines[-1].startswith("edition 7 sent")  # at 0, 5 and 10 s, and the end
