"""Articles: storing parsed stories, finding them, and their public JSON shape."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.models import Article


class ArticleNotFound(LookupError):
    """No article has that slug."""


def get(session: Session, slug: str) -> Article:
    """The article with `slug`, or ArticleNotFound."""
    article = session.scalar(select(Article).where(Article.slug == slug))
    if article is None:
        raise ArticleNotFound(slug)
    return article


def latest(session: Session, limit: int = 20) -> list[Article]:
    """The newest articles first."""
    query = select(Article).order_by(Article.published_at.desc(), Article.id.desc()).limit(limit)
    return list(session.scalars(query))


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
