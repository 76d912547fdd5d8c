"""Articles: storing parsed stories, finding them, and their public JSON shape.

An article is keyed by where it came from (`source_key`): ingesting the same source
again updates the row and keeps its slug, so links in sent editions keep working.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter import db
from newsletter.models import Article, utcnow
from newsletter.seedformat import ParsedArticle

SLUG_MAX = 80
SOURCE_KEY_MAX = 500    # Article.source_key's column size
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# Letters that NFKD does not take apart into an ASCII letter and accents; apostrophes go,
# so "Syria’s" and "Syria's" both give "syrias".
_LETTERS = str.maketrans({"'": "", "’": "", "ʼ": "", "ß": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o",
                          "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "þ": "th", "Þ": "th", "ı": "i"})


class ArticleNotFound(LookupError):
    """No article has that slug."""


def get(session: Session, slug: str) -> Article:
    """The article with `slug`, or ArticleNotFound."""
    if db.holds_nul(slug):  # in no slug, and PostgreSQL refuses it in a query's text
        raise ArticleNotFound(slug)
    article = session.scalar(select(Article).where(Article.slug == slug))
    if article is None:
        raise ArticleNotFound(slug)
    return article


def latest(session: Session, limit: int = 20) -> list[Article]:
    """The newest articles first."""
    query = select(Article).order_by(Article.published_at.desc(), Article.id.desc()).limit(limit)
    return list(session.scalars(query))


def source_key(parsed: ParsedArticle, fallback: str) -> str:
    """The front matter id or url when the text names one, else `fallback` (a feed entry, a file)."""
    return parsed.source_id or parsed.url or fallback


def save(session: Session, parsed: ParsedArticle, source_key: str) -> tuple[Article, bool]:
    """Insert or update the article from `source_key`; True when it is new. Flushes."""
    key = storable_key(source_key)
    article = session.scalar(select(Article).where(Article.source_key == key))
    created = article is None
    if created:
        article = Article(source_key=key, slug=unique_slug(session, parsed.headline),
                          published_at=parsed.published_at or utcnow())
        session.add(article)
    _fill(article, parsed)
    session.flush()
    return article, created


def _fill(article: Article, parsed: ParsedArticle) -> None:
    article.headline = parsed.headline
    article.byline = parsed.byline
    article.section = parsed.section
    article.tags = list(parsed.tags)
    article.access = parsed.access
    article.url = parsed.url
    article.body = [dict(block) for block in parsed.blocks]
    article.notes = list(parsed.notes)
    if parsed.published_at is not None:
        article.published_at = parsed.published_at


def storable_key(source_key: str) -> str:
    """`source_key`, or a digest of it when it is longer than the column holds."""
    if len(source_key) <= SOURCE_KEY_MAX:
        return source_key
    return "sha256:" + hashlib.sha256(source_key.encode("utf-8")).hexdigest()


def slugify(headline: str, limit: int = SLUG_MAX) -> str:
    """ASCII, lowercase, hyphenated, at most `limit` characters, cut between words."""
    decomposed = unicodedata.normalize("NFKD", headline.translate(_LETTERS))
    ascii_text = decomposed.encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > limit:
        slug = slug[:limit + 1].rsplit("-", 1)[0] if "-" in slug[:limit + 1] else slug[:limit]
    return slug.strip("-") or "article"


def unique_slug(session: Session, headline: str) -> str:
    """A slug for `headline` that no article has yet: base, base-2, base-3…"""
    base = slugify(headline)
    candidate, n = base, 1
    while session.scalar(select(Article.id).where(Article.slug == candidate)) is not None:
        n += 1
        suffix = f"-{n}"
        candidate = slugify(base, SLUG_MAX - len(suffix)) + suffix
    return candidate


def paragraphs(article: Article) -> list[str]:
    return [b["text"] for b in article.body if b["type"] == "paragraph"]


def images(article: Article) -> list[dict]:
    return [{"caption": b["caption"], "credit": b["credit"]} for b in article.body if b["type"] == "image"]


def as_json(article: Article) -> dict:
    """The article as GET /api/v1/articles/<slug> answers it (CONTRACT.md)."""
    return {
        "slug": article.slug,
        "headline": article.headline,
        "byline": article.byline,
        "published_at": article.published_at.isoformat(),
        "paragraphs": paragraphs(article),
        "images": images(article),
        "notes": list(article.notes),
        "section": article.section,
        "tags": list(article.tags),
        "access": article.access,
        "url": article.url,
        "updated_at": article.updated_at.isoformat(),
        # The blocks in reading order, for clients that place captions where they stood.
        "body": list(article.body),
    }


def lede_length(article: Article) -> int:
    """Blocks up to and including the first paragraph: what a members-only story shows everyone."""
    for index, block in enumerate(article.body):
        if block["type"] == "paragraph":
            return index + 1
    return len(article.body)


def members_preview(article: Article) -> dict:
    """as_json for a reader who may not read the members-only `article`: its lede, no more."""
    lede = article.body[:lede_length(article)]
    return as_json(article) | {
        "paragraphs": [b["text"] for b in lede if b["type"] == "paragraph"],
        "images": [{"caption": b["caption"], "credit": b["credit"]} for b in lede if b["type"] == "image"],
        "notes": [], "body": list(lede)}
