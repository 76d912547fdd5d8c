"""Editions: choosing the stories, defaults, editing, locking once the send started."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from newsletter import editions
from newsletter.models import Edition
from tests.factories import make_article, paragraph

LONDON = "Europe/London"
DAY = date(2026, 7, 1)  # British Summer Time: London is UTC+1


def at(day: date, hour: int, minute: int = 0, tz: str = LONDON) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(tz))


def create(session, **kwargs) -> Edition:
    return editions.create_edition(session, **({"day": DAY, "slugs": None, "count": 8, "tz": LONDON} | kwargs))


def slugs_of(session, edition) -> list[str]:
    return [a.slug for a in editions.edition_articles(session, edition)]


# ---------------------------------------------------------------- creating

def test_the_days_stories_newest_first(session):
    early = make_article(session, published_at=at(DAY, 7))
    late = make_article(session, published_at=at(DAY, 18))
    noon = make_article(session, published_at=at(DAY, 12))
    make_article(session, published_at=at(DAY - timedelta(days=1), 12))
    make_article(session, published_at=at(DAY + timedelta(days=1), 12))
    edition = create(session)
    assert slugs_of(session, edition) == [late.slug, noon.slug, early.slug]
    assert (edition.date, edition.state, edition.version) == (DAY, "draft", 1)


def test_count_keeps_the_newest(session):
    stories = [make_article(session, published_at=at(DAY, 6 + n)) for n in range(5)]
    edition = create(session, count=2)
    assert slugs_of(session, edition) == [stories[4].slug, stories[3].slug]


def test_stories_by_slug_in_the_given_order(session):
    a, b, c = (make_article(session, published_at=at(DAY, 9 + n)) for n in range(3))
    old = make_article(session, published_at=at(date(2020, 1, 1), 9))
    edition = create(session, slugs=[old.slug, a.slug, c.slug])
    assert slugs_of(session, edition) == [old.slug, a.slug, c.slug]
    assert b.slug not in slugs_of(session, edition)


def test_unknown_slug_is_named(session):
    known = make_article(session, published_at=at(DAY, 9))
    with pytest.raises(editions.ArticleNotFound, match="no-such-story"):
        create(session, slugs=[known.slug, "no-such-story"])
    assert session.scalar(select(Edition)) is None


def test_a_slug_with_a_nul_is_no_story(session):
    # PostgreSQL refuses NUL in a query's text: without the check this is a DataError (a 500 in
    # the console and the API, a traceback from `newsletter edition create`).
    known = make_article(session, published_at=at(DAY, 9))
    with pytest.raises(editions.ArticleNotFound, match="story"):
        create(session, slugs=[known.slug, f"{known.slug}\x00"])
    with pytest.raises(editions.ArticleNotFound):
        create(session, slugs=["\x00"])
    assert session.scalar(select(Edition)) is None


def test_a_day_without_stories(session):
    make_article(session, published_at=at(DAY - timedelta(days=3), 9))
    with pytest.raises(editions.NoStories, match="2026-07-01"):
        create(session)


def test_a_day_without_stories_can_take_the_latest(session):
    older = make_article(session, published_at=at(DAY - timedelta(days=3), 9))
    newer = make_article(session, published_at=at(DAY - timedelta(days=2), 9))
    edition = create(session, or_latest=True)
    assert slugs_of(session, edition) == [newer.slug, older.slug]


def test_no_stories_at_all(session):
    with pytest.raises(editions.NoStories):
        create(session, or_latest=True)


@pytest.mark.parametrize("utc_time, on_day", [
    (datetime(2026, 6, 30, 22, 59, tzinfo=timezone.utc), False),  # 23:59 BST on 30 June
    (datetime(2026, 6, 30, 23, 0, tzinfo=timezone.utc), True),    # 00:00 BST on 1 July
    (datetime(2026, 7, 1, 22, 59, tzinfo=timezone.utc), True),    # 23:59 BST on 1 July
    (datetime(2026, 7, 1, 23, 0, tzinfo=timezone.utc), False),    # 00:00 BST on 2 July
])
def test_the_day_is_the_newsrooms_day(session, utc_time, on_day):
    story = make_article(session, published_at=utc_time)
    found = editions.stories_of_day(session, DAY, LONDON, 10)
    assert (story in found) is on_day


def test_the_day_in_utc_is_another_day(session):
    story = make_article(session, published_at=datetime(2026, 6, 30, 23, 30, tzinfo=timezone.utc))
    assert editions.stories_of_day(session, DAY, LONDON, 10) == [story]
    assert editions.stories_of_day(session, DAY, "UTC", 10) == []
    assert editions.stories_of_day(session, DAY - timedelta(days=1), "UTC", 10) == [story]


def test_a_daylight_saving_day_has_25_hours():
    start, end = editions.day_bounds(date(2026, 10, 25), LONDON)
    assert end - start == timedelta(hours=25)


def test_without_a_day_it_is_today_in_the_newsrooms_zone(session):
    zone = "Pacific/Kiritimati"  # UTC+14: often a day ahead of UTC
    today = datetime.now(ZoneInfo(zone)).date()
    story = make_article(session, published_at=datetime.now(timezone.utc))
    edition = create(session, day=None, tz=zone, slugs=[story.slug])
    assert edition.date == today


def test_default_subject_and_preheader(session):
    lede = "Ministers agreed overnight " + "on a long list of things " * 12 + "in the end."
    make_article(session, published_at=at(DAY, 9), headline="Second story")
    make_article(session, published_at=at(DAY, 10), headline="Talks end in a deal",
                 body=[paragraph(lede), paragraph("More.")])
    edition = create(session)
    assert edition.subject == "The Daily Edition — 1 July 2026: Talks end in a deal"
    assert edition.preheader.startswith("Ministers agreed overnight on a long list")
    assert edition.preheader.endswith("…") and len(edition.preheader) <= editions.PREHEADER_MAX


def test_given_subject_preheader_and_intro(session):
    make_article(session, published_at=at(DAY, 9))
    edition = create(session, subject="  Our  pick ", preheader="Read this", intro="Good morning.")
    assert (edition.subject, edition.preheader, edition.intro) == ("Our pick", "Read this", "Good morning.")


def test_long_headlines_fit_the_subject_column(session):
    make_article(session, published_at=at(DAY, 9), headline="word " * 59)
    assert len(create(session).subject) <= editions.SUBJECT_MAX


def test_get(session):
    make_article(session, published_at=at(DAY, 9))
    edition = create(session)
    assert editions.get(session, edition.id) is edition
    with pytest.raises(editions.EditionNotFound):
        editions.get(session, edition.id + 1)


# ---------------------------------------------------------------- editing and locking

@pytest.fixture
def draft(session):
    for n in range(3):
        make_article(session, slug=f"s{n}", published_at=at(DAY, 9 + n))
    edition = create(session)
    session.commit()
    return edition


def test_a_draft_can_be_edited_and_each_change_bumps_the_version(session, draft):
    editions.update_edition(session, draft, subject="New subject", intro="Hello")
    assert (draft.subject, draft.intro, draft.version) == ("New subject", "Hello", 2)
    editions.update_edition(session, draft, stories=["s0", "s2"])
    assert slugs_of(session, draft) == ["s0", "s2"]
    assert draft.version == 3


def test_update_refuses_unknown_fields_and_empty_values(session, draft):
    with pytest.raises(TypeError, match="state"):
        editions.update_edition(session, draft, state="sent")
    with pytest.raises(ValueError):
        editions.update_edition(session, draft, subject="   ")
    with pytest.raises(editions.NoStories):
        editions.update_edition(session, draft, stories=[])
    with pytest.raises(editions.ArticleNotFound, match="gone"):
        editions.update_edition(session, draft, stories=["s0", "gone"])


@pytest.mark.parametrize("state", ["sending", "paused", "sent", "cancelled"])
def test_locked_once_the_send_started(session, draft, state):
    draft.state = state
    session.commit()
    with pytest.raises(editions.EditionLocked):
        editions.update_edition(session, draft, subject="Too late")
    with pytest.raises(editions.EditionLocked):
        editions.update_edition(session, draft, stories=["s0"])
    session.rollback()
    assert editions.get(session, draft.id).subject != "Too late"
    assert len(slugs_of(session, draft)) == 3


def test_a_story_can_be_pulled_during_the_send(session, draft):
    draft.state = "sending"
    session.commit()
    editions.pull_article(session, draft, "s1")
    session.commit()
    assert slugs_of(session, draft) == ["s2", "s0"]
    assert draft.version == 2


def test_pull_refuses_a_story_not_in_the_edition_and_the_last_story(session, draft):
    other = make_article(session, slug="elsewhere", published_at=at(DAY - timedelta(days=5), 9))
    with pytest.raises(editions.ArticleNotFound, match="elsewhere"):
        editions.pull_article(session, draft, other.slug)
    editions.pull_article(session, draft, "s0")
    editions.pull_article(session, draft, "s1")
    with pytest.raises(editions.NoStories):
        editions.pull_article(session, draft, "s2")
    assert slugs_of(session, draft) == ["s2"]


def test_a_correction_bumps_the_unfinished_editions_that_carry_the_story(session, draft):
    story = editions.edition_articles(session, draft)[0]
    draft.state = "sending"
    finished = create(session, slugs=[story.slug])
    finished.state = "sent"
    elsewhere = create(session, slugs=["s0"])
    session.commit()
    bumped = editions.note_correction(session, story)
    assert bumped == [draft]
    assert (draft.version, finished.version, elsewhere.version) == (2, 1, 1)


def test_bump_version_counts_every_bump(session, app, draft):
    from newsletter import db

    with app.app_context():
        other = db.session()  # another connection, as a second worker would be
        editions.bump_version(other, editions.get(other, draft.id))
        other.commit()
    editions.bump_version(session, draft)
    session.commit()
    assert draft.version == 3
