"""Editions: a date, ordered stories, a subject, a preheader and an intro.

An edition is editable while it is a draft. Once its send has started (any other state)
only two changes remain, because recipients not yet reached should get them: pulling a
story (`pull_article`) and corrections to a story's own text (`note_correction`). Every
change to what recipients get bumps `Edition.version`; renders are cached per version
(newsletter.edition_render), so the next batch of a running send picks the change up.

Choosing the day's stories: the stories published on `day` in the newsroom's time zone,
newest first, at most `count`. A day without stories raises NoStories (the daily
schedule skips such days) unless the caller asks for the latest stories instead with
`or_latest=True`; NoStories then means there are no stories at all.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from newsletter import articles, db
from newsletter.articles import ArticleNotFound
from newsletter.models import Article, Edition, EditionArticle

__all__ = ["ArticleNotFound", "EditionLocked", "EditionNotFound", "NoStories", "create_edition",
           "update_edition", "pull_article", "note_correction", "bump_version", "edition_articles",
           "get", "stories_of_day", "date_label", "default_subject", "default_preheader"]

PUBLICATION = "The Daily Edition"
EDITABLE_FIELDS = ("subject", "preheader", "intro", "stories")
SUBJECT_MAX = 300     # Edition.subject's column size
PREHEADER_MAX = 140   # what mail clients show of it, roughly; the column holds 300


class EditionNotFound(LookupError):
    """No edition has that id."""


class EditionLocked(Exception):
    """The edition's send has started: only pulling a story or a correction can change it."""


class NoStories(LookupError):
    """There is nothing to put in the edition (no stories that day, or none at all)."""


def get(session: Session, edition_id: int) -> Edition:
    """The edition with `edition_id`, or EditionNotFound."""
    edition = session.get(Edition, edition_id)
    if edition is None:
        raise EditionNotFound(edition_id)
    return edition


def create_edition(session: Session, *, day: date | None, slugs: list[str] | None, count: int,
                   tz: str, subject: str | None = None, preheader: str | None = None,
                   intro: str = "", publication: str = PUBLICATION,
                   or_latest: bool = False) -> Edition:
    """A new draft edition of `day` (today in `tz` when None) with the given or the day's stories."""
    day = day or datetime.now(ZoneInfo(tz)).date()
    stories = _articles_by_slug(session, slugs) if slugs else stories_of_day(session, day, tz, count)
    if not stories and or_latest:
        stories = articles.latest(session, count)
    if not stories:
        raise NoStories(f"no stories published on {day.isoformat()} ({tz})" if not or_latest
                        else "there are no stories yet")
    edition = Edition(date=day, intro=intro,
                      subject=_clean(subject) or default_subject(day, stories[0], publication),
                      preheader=_clean(preheader) or default_preheader(stories[0]))
    session.add(edition)
    session.flush()
    _set_stories(session, edition, stories)
    return edition


def stories_of_day(session: Session, day: date, tz: str, count: int) -> list[Article]:
    """At most `count` stories published on `day` in the time zone `tz`, newest first."""
    start, end = day_bounds(day, tz)
    query = (select(Article).where(Article.published_at >= start, Article.published_at < end)
             .order_by(Article.published_at.desc(), Article.id.desc()).limit(count))
    return list(session.scalars(query))


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """The first instants (UTC) of `day` and of the day after in `tz`: 23 or 25 hours apart
    when the clocks change."""
    zone = ZoneInfo(tz)
    return (datetime.combine(day, time(), zone).astimezone(timezone.utc),
            datetime.combine(day + timedelta(days=1), time(), zone).astimezone(timezone.utc))


def update_edition(session: Session, edition: Edition, **fields) -> Edition:
    """Change subject, preheader, intro or stories (a list of slugs) of a draft; bumps the version."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"cannot update {', '.join(sorted(unknown))} (known: {', '.join(EDITABLE_FIELDS)})")
    # Lock the row so that a send starting now waits for this change, or this one sees it.
    session.refresh(edition, with_for_update=True)
    if edition.state != "draft":
        raise EditionLocked(f"edition {edition.id} is {edition.state}: its send has started")
    if "stories" in fields:
        stories = _articles_by_slug(session, fields.pop("stories"))
        if not stories:
            raise NoStories("an edition needs at least one story")
        _set_stories(session, edition, stories)
    for name, value in fields.items():
        setattr(edition, name, _checked(name, value))
    return bump_version(session, edition)


def pull_article(session: Session, edition: Edition, slug: str) -> Edition:
    """Take the story `slug` out of the edition, whatever its state; bumps the version."""
    session.refresh(edition, with_for_update=True)
    article = articles.get(session, slug)
    row = session.scalar(select(EditionArticle).where(EditionArticle.edition_id == edition.id,
                                                      EditionArticle.article_id == article.id))
    if row is None:
        raise ArticleNotFound(f"{slug} is not in edition {edition.id}")
    if len(edition_articles(session, edition)) == 1:
        raise NoStories(f"{slug} is the last story of edition {edition.id}: cancel the send instead")
    session.delete(row)
    return bump_version(session, edition)


def note_correction(session: Session, article: Article) -> list[Edition]:
    """Bump every unfinished edition that carries `article`, after its text changed."""
    query = (select(Edition).join(EditionArticle, EditionArticle.edition_id == Edition.id)
             .where(EditionArticle.article_id == article.id,
                    Edition.state.in_(("draft", "sending", "paused"))))
    editions = list(session.scalars(query))
    for edition in editions:
        bump_version(session, edition)
    return editions


def bump_version(session: Session, edition: Edition) -> Edition:
    """Add one to the edition's version, in SQL so that two concurrent bumps both count."""
    edition.version = Edition.version + 1
    session.flush()
    return edition


def edition_articles(session: Session, edition: Edition) -> list[Article]:
    """The edition's stories in their order."""
    query = (select(Article).join(EditionArticle, EditionArticle.article_id == Article.id)
             .where(EditionArticle.edition_id == edition.id).order_by(EditionArticle.position))
    return list(session.scalars(query))


def default_subject(day: date, lead: Article, publication: str = PUBLICATION) -> str:
    """"The Daily Edition — 25 November 2026: <first headline>", cut to fit the column."""
    subject = f"{publication} — {date_label(day)}: {lead.headline}"
    return _shorten(subject, SUBJECT_MAX)


def date_label(day: date) -> str:
    """"25 November 2026"."""
    return f"{day.day} {day:%B %Y}"


def default_preheader(lead: Article) -> str:
    """The first story's lede, shortened to what inbox previews show."""
    lede = next(iter(articles.paragraphs(lead)), lead.headline)
    return _shorten(lede, PREHEADER_MAX)


def _articles_by_slug(session: Session, slugs: list[str]) -> list[Article]:
    # A slug with a NUL is in no article, and PostgreSQL refuses it in a query: not looked up.
    wanted = {slug for slug in slugs if not db.holds_nul(slug)}
    found = {a.slug: a for a in session.scalars(select(Article).where(Article.slug.in_(wanted)))}
    for slug in slugs:
        if slug not in found:
            raise ArticleNotFound(slug)
    return [found[slug] for slug in dict.fromkeys(slugs)]


def _set_stories(session: Session, edition: Edition, stories: list[Article]) -> None:
    session.execute(delete(EditionArticle).where(EditionArticle.edition_id == edition.id))
    session.add_all(EditionArticle(edition_id=edition.id, article_id=a.id, position=n)
                    for n, a in enumerate(stories))
    session.flush()


def _checked(name: str, value: str) -> str:
    value = _clean(value) if name != "intro" else (value or "").strip()
    if name == "subject" and not value:
        raise ValueError("an edition needs a subject")
    limit = SUBJECT_MAX if name == "subject" else 300 if name == "preheader" else None
    if limit and len(value) > limit:
        raise ValueError(f"the {name} can be at most {limit} characters long")
    return value


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def _shorten(text: str, limit: int) -> str:
    text = _clean(text)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit - 1]
    return cut.rstrip(" ,;:—-") + "…"
