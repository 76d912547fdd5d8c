"""Reader pages: the front page, the article page and the newsletter terms."""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, current_app, render_template

from newsletter import articles, db
from newsletter.models import Article

bp = Blueprint("reader", __name__)


@bp.get("/")
def front_page():
    stories = articles.latest(db.session(), current_app.config["FRONT_PAGE_ARTICLES"])
    return render_template("front.html", articles=stories, **page_extras(None))


@bp.get("/articles/<slug>")
def article(slug: str):
    try:
        story = articles.get(db.session(), slug)
    except articles.ArticleNotFound:
        abort(404)
    return render_template("article.html", article=story, **page_extras(story))


@bp.get("/terms")
def terms():
    return render_template("terms.html")


def page_extras(article: Article | None) -> dict:
    """What a page shows around the story; later issues decide this per reader."""
    # Members will see no ads and no appeal; until readers are known everyone sees both.
    return {"show_newsletter_box": True, "show_ads": True, "show_prompt": True}


@bp.app_template_filter("paragraphs")
def paragraphs_filter(article: Article) -> list[str]:
    return articles.paragraphs(article)


@bp.app_template_filter("longdate")
def longdate(moment: datetime) -> str:
    """`November 11, 2025`, without the platform-specific strftime flags."""
    return f"{moment:%B} {moment.day}, {moment:%Y}"


@bp.app_template_filter("clock")
def clock(moment: datetime) -> str:
    return f"{moment:%H:%M} {moment.tzname() or 'UTC'}"
