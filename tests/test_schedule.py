"""The daily schedule: nothing before the local send time, the day's edition once from
then on (also when two runs race), days without stories skipped, time zones and the days
the clocks change; the beat task with its Redis lock."""
from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta, timezone

import pytest
from sqlalchemy import select

from newsletter import db, editions, schedule
from newsletter.models import Edition
from newsletter.schedule import DailySettings, daily_send
from tests.factories import make_article
from tests.support.delivery import published
from workers import schedule_tasks
from workers.celery_app import beat_schedule, celery_init_app

UTC = timezone.utc
LONDON = DailySettings(send_at=time(7, 0), tz="Europe/London", window=timedelta(minutes=60), stories=8)


def at(text: str) -> datetime:
    """An instant, given in UTC: "2026-11-25 07:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def story(session, published: str, **values):
    return make_article(session, published_at=at(published), **values)


def all_editions(session) -> list[Edition]:
    session.expire_all()
    return list(session.scalars(select(Edition).order_by(Edition.id)))


# ---------------------------------------------------------------- when

def test_off_without_a_send_time(session):
    story(session, "2026-11-25 06:00")
    assert daily_send(session, at("2026-11-25 12:00"), DailySettings(send_at=None)).outcome == "off"
    assert all_editions(session) == []


def test_nothing_before_the_send_time(session):
    story(session, "2026-11-25 06:00")
    result = daily_send(session, at("2026-11-25 06:59"), LONDON)
    assert (result.outcome, result.day) == ("not_due", date(2026, 11, 25))
    assert all_editions(session) == []


def test_at_the_send_time_the_days_edition_is_made_and_sent(session, broker):
    lead = story(session, "2026-11-25 06:30", headline="Harbour reopens")
    story(session, "2026-11-24 23:30")  # the day before, in London as in UTC
    session.commit()

    result = daily_send(session, at("2026-11-25 07:00"), LONDON)
    session.commit()

    [edition] = all_editions(session)
    assert result == schedule.DailyResult("started", date(2026, 11, 25), edition.id)
    assert edition.date == date(2026, 11, 25) and edition.state == "sending"
    assert [a.slug for a in editions.edition_articles(session, edition)] == [lead.slug]
    assert [(name, args) for name, args, _ in published(broker)] == [("delivery.plan", [edition.id])]


def test_once_a_day_however_often_it_runs(session, broker):
    story(session, "2026-11-25 06:30")
    session.commit()
    outcomes = []
    for minute in range(0, 60, 7):
        outcomes.append(daily_send(session, at("2026-11-25 07:00") + timedelta(minutes=minute), LONDON).outcome)
        session.commit()
    assert outcomes == ["started"] + ["done"] * 8
    assert len(all_editions(session)) == 1
    assert len(published(broker)) == 1
    # The next day is a new day.
    story(session, "2026-11-26 05:00")
    assert daily_send(session, at("2026-11-26 07:01"), LONDON).outcome == "started"


def test_nothing_after_the_window(session):
    story(session, "2026-11-25 06:30")
    result = daily_send(session, at("2026-11-25 08:00"), LONDON)
    assert result.outcome == "too_late" and "08:00:00+00:00" in result.reason
    assert all_editions(session) == []


def test_a_day_without_stories_is_skipped_and_says_why(session):
    story(session, "2026-11-24 12:00")
    result = daily_send(session, at("2026-11-25 07:00"), LONDON)
    assert result.outcome == "skipped"
    assert result.reason == "no stories published on 2026-11-25 (Europe/London)"
    assert all_editions(session) == []
    # A story published later within the window goes out then.
    story(session, "2026-11-25 07:20")
    assert daily_send(session, at("2026-11-25 07:21"), LONDON).outcome == "started"


def test_a_draft_the_operator_prepared_goes_instead(session):
    chosen = story(session, "2026-11-24 12:00")
    story(session, "2026-11-25 06:00")
    draft = editions.create_edition(session, day=date(2026, 11, 25), slugs=[chosen.slug], count=8, tz="UTC")
    draft.created_at = at("2026-11-25 06:00")
    session.commit()
    result = daily_send(session, at("2026-11-25 07:00"), LONDON)
    assert (result.outcome, result.edition_id) == ("started", draft.id)
    assert [e.id for e in all_editions(session)] == [draft.id]


def test_a_draft_made_after_the_send_time_is_left_alone(session):
    story(session, "2026-11-25 06:00")
    late = editions.create_edition(session, day=date(2026, 11, 25), slugs=None, count=8, tz="UTC")
    late.created_at = at("2026-11-25 07:05")
    session.commit()
    result = daily_send(session, at("2026-11-25 07:06"), LONDON)
    assert result.outcome == "started" and result.edition_id != late.id
    assert session.get(Edition, late.id, populate_existing=True).state == "draft"


def test_a_cancelled_send_is_not_made_again(session):
    story(session, "2026-11-25 06:00")
    edition = editions.create_edition(session, day=date(2026, 11, 25), slugs=None, count=8, tz="UTC")
    edition.state = "cancelled"
    session.commit()
    result = daily_send(session, at("2026-11-25 07:00"), LONDON)
    assert result == schedule.DailyResult("done", date(2026, 11, 25), edition.id, f"edition {edition.id} is cancelled")


# ---------------------------------------------------------------- zones and clock changes

def test_the_day_is_the_newsrooms_own(session):
    auckland = DailySettings(send_at=time(7, 0), tz="Pacific/Auckland")
    story(session, "2026-11-25 12:00")  # 26 November, 01:00 in Auckland
    assert daily_send(session, at("2026-11-25 17:59"), auckland).outcome == "not_due"
    result = daily_send(session, at("2026-11-25 18:00"), auckland)  # 07:00 on the 26th there
    assert (result.outcome, result.day) == ("started", date(2026, 11, 26))
    assert all_editions(session)[0].date == date(2026, 11, 26)


def test_the_day_the_clocks_go_forward(session):
    # 29 March 2026: London goes from GMT to BST at 01:00 UTC; 07:00 BST is 06:00 UTC.
    story(session, "2026-03-28 23:30")  # 23:30 GMT, the day before
    story(session, "2026-03-29 05:00", slug="spring")
    assert daily_send(session, at("2026-03-29 05:59"), LONDON).outcome == "not_due"
    result = daily_send(session, at("2026-03-29 06:00"), LONDON)
    assert result.outcome == "started"
    assert [a.slug for a in editions.edition_articles(session, all_editions(session)[0])] == ["spring"]


def test_the_day_the_clocks_go_back(session):
    # 25 October 2026: from BST back to GMT at 01:00 UTC; 07:00 GMT is 07:00 UTC. The day
    # has 25 hours: a story at 23:30 UTC on the 24th is 00:30 BST on the 25th.
    story(session, "2026-10-24 23:30", slug="just-after-midnight")
    assert daily_send(session, at("2026-10-25 06:30"), LONDON).outcome == "not_due"
    result = daily_send(session, at("2026-10-25 07:00"), LONDON)
    assert (result.outcome, result.day) == ("started", date(2026, 10, 25))
    assert [a.slug for a in editions.edition_articles(session, all_editions(session)[0])] == ["just-after-midnight"]


def test_send_times_the_clocks_skip_or_repeat():
    settings = DailySettings(send_at=time(1, 30), tz="Europe/London")
    # 01:30 does not exist on 29 March (01:00 GMT → 02:00 BST): it comes as 02:30 BST.
    assert schedule.send_time(date(2026, 3, 29), settings) == at("2026-03-29 01:30")
    # 01:30 happens twice on 25 October: the first time, in BST.
    assert schedule.send_time(date(2026, 10, 25), settings) == at("2026-10-25 00:30")
    assert schedule.send_time(date(2026, 11, 25), settings) == at("2026-11-25 01:30")


# ---------------------------------------------------------------- settings

def test_settings_from_the_configuration():
    settings = DailySettings.from_config({"DAILY_SEND_AT": "6:05", "TIMEZONE": "Europe/Paris",
                                          "DAILY_SEND_WINDOW": 30, "EDITION_STORIES": 5,
                                          "PUBLICATION_NAME": "The Courier"})
    assert settings == DailySettings(time(6, 5), "Europe/Paris", timedelta(minutes=30), 5, "The Courier")
    assert DailySettings.from_config({"DAILY_SEND_AT": "", "TIMEZONE": "UTC"}).send_at is None
    assert schedule.describe(settings) == "every day at 06:05 Europe/Paris (or within 30 minutes after)"


@pytest.mark.parametrize("config, message", [
    ({"DAILY_SEND_AT": "7am"}, "DAILY_SEND_AT must be a 24-hour time"),
    ({"DAILY_SEND_AT": "24:00"}, "DAILY_SEND_AT must be a 24-hour time"),
    ({"DAILY_SEND_AT": "07:00", "TIMEZONE": "Europe/Londres"}, "TIMEZONE 'Europe/Londres' is not"),
])
def test_bad_settings_say_what_is_wrong(config, message):
    with pytest.raises(ValueError, match=message):
        DailySettings.from_config(config)


def test_beat_runs_the_schedule_every_minute_only_when_it_is_set(app):
    assert "daily-send" not in beat_schedule(app.config)
    entry = beat_schedule({"DAILY_SEND_AT": "07:00"})["daily-send"]
    assert entry["task"] == "schedule.daily_send"
    assert str(entry["schedule"]) == "<crontab: * * * * * (m/h/dM/MY/d)>"


# ---------------------------------------------------------------- two runs at once

def run_in_threads(app, count: int, run) -> list:
    """`run()` in `count` threads at once, each in its own app context (own session)."""
    barrier, results, errors = threading.Barrier(count), [None] * count, []

    def one(n):
        try:
            with app.app_context():
                barrier.wait(30)
                results[n] = run()
        except Exception as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_two_runs_at_once_send_once(app, session, broker):
    story(session, "2026-11-25 06:30")
    session.commit()

    def run():
        s = db.session()
        result = daily_send(s, at("2026-11-25 07:00"), LONDON)
        s.commit()
        return result.outcome

    assert sorted(run_in_threads(app, 2, run)) == ["done", "started"]
    assert len(all_editions(session)) == 1
    assert [name for name, _args, _ in published(broker)] == ["delivery.plan"]


@pytest.fixture
def due_now(app):
    """The schedule set so that it is due whenever this test runs."""
    app.config.update(DAILY_SEND_AT="00:00", TIMEZONE="UTC", DAILY_SEND_WINDOW=24 * 60)


@pytest.fixture
def task(app):
    """The beat task as a worker runs it: celery_init_app's task class, in this app's context."""
    celery = celery_init_app(app)
    yield lambda: celery.tasks["schedule.daily_send"].apply().get()
    celery.close()


def test_the_beat_task_sends_once_when_two_beats_run_it(app, session, broker, due_now, task):
    story(session, datetime.now(UTC).strftime("%Y-%m-%d %H:%M"), slug="today")
    session.commit()

    outcomes = run_in_threads(app, 2, lambda: task()["outcome"])

    assert sorted(outcomes) in (["busy", "started"], ["done", "started"])
    [edition] = all_editions(session)
    assert edition.state == "sending" and edition.date == datetime.now(UTC).date()
    assert [name for name, _args, _ in published(broker)] == ["delivery.plan"]
    assert task()["outcome"] == "done"


def test_the_beat_task_waits_for_the_lock(app, session, broker, due_now, task):
    story(session, datetime.now(UTC).strftime("%Y-%m-%d %H:%M"))
    session.commit()
    held = broker.lock(schedule_tasks.LOCK, timeout=30)
    assert held.acquire(blocking=False)
    assert task() == {"outcome": "busy"}
    held.release()
    result = task()
    assert result["outcome"] == "started" and result["day"] == datetime.now(UTC).date().isoformat()


def test_the_beat_task_logs_a_skipped_day(app, session, due_now, task, caplog):
    result = task()
    assert result["outcome"] == "skipped"
    assert "daily send" in caplog.text and "skipped: no stories published on" in caplog.text
