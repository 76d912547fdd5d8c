"""Rows made directly for tests, without going through the seed parser."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from newsletter.models import Article

_numbers = itertools.count(1)
_EPOCH = datetime(2025, 11, 11, 9, 0, tzinfo=timezone.utc)


def paragraph(text: str) -> dict:
    return {"type": "paragraph", "text": text}


def image(caption: str, credit: str = "") -> dict:
    return {"type": "image", "caption": caption, "credit": credit}


def make_article(session, **overrides) -> Article:
    """An Article with sensible defaults; any column can be overridden. Flushes only."""
    n = next(_numbers)
    values = {
        "source_key": f"test:story-{n}",
        "slug": f"story-{n}",
        "headline": f"Story number {n}",
        "byline": "Test Reporter",
        "section": "News",
        "body": [paragraph(f"The first paragraph of story {n}.")],
        "notes": [],
        "tags": [],
        "published_at": _EPOCH + timedelta(minutes=n),
    }
    article = Article(**(values | overrides))
    session.add(article)
    session.flush()
    return article
