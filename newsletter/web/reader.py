"""Reader pages: the front page, the article page and the newsletter terms."""
from __future__ import annotations

from datetime import datetime

from flask import (Blueprint, Response, abort, current_app, g, make_response, render_template,
                   url_for)

from newsletter import articles, db
from newsletter.models import Article
from newsletter.web import prompt_reader

# past_due members keep their benefits through the grace period (newsletter.memberships).
READS_CLEAN = ("member", "past_due")

bp = Blueprint("reader", __name__)


@bp.get("/")
def front_page():
    stories = articles.latest(db.session(), current_app.config["FRONT_PAGE_ARTICLES"])
    extras = page_extras(None)
    return cache_headers(make_response(render_template("front.html", articles=stories, **extras)), extras)


@bp.get("/articles/<slug>")
def article(slug: str):
    try:
        story = articles.get(db.session(), slug)
    except articles.ArticleNotFound:
        abort(404)
    extras = page_extras(story)
    response = make_response(render_template("article.html", article=story, **extras))
    return cache_headers(response, extras)


@bp.get("/terms")
def terms():
    return render_template("terms.html")


def page_extras(article: Article | None) -> dict:
    """What a page shows around the story for this reader: boxes, ads, the prompt slot, the gate.

    Members read clean (no ads, no appeal); subscribers get no sign-up box; a members-only
    story shows non-members its lede and the appeal. Only readers signed in or known as
    subscribers get a page of their own; every other reader gets the same HTML, and the
    prompt slot is filled per reader from GET /api/v1/prompt (PROMPT_DELIVERY "script").
    The forms' CSRF tokens are fetched when they are sent (`lazy_csrf`, partials/csrf_field.html).
    """
    state, subscriber = prompt_reader.reader_standing()
    extras = {"show_newsletter_box": not subscriber, "show_ads": state not in READS_CLEAN,
              "show_prompt": article is not None and state != "member",
              "gated": article is not None and article.access == "members" and state not in READS_CLEAN,
              "personal": prompt_reader.personal(), "prompt_src": None, "prompt_slot": None,
              "lazy_csrf": True}
    if extras["show_prompt"]:
        if current_app.config["PROMPT_DELIVERY"] == "page":
            extras["prompt_slot"] = prompt_reader.slot(prompt_reader.story_of(article))
            extras["personal"] = True
        else:
            extras["prompt_src"] = url_for("prompt_api.prompt", article=article.slug)
    return extras


def cache_headers(response: Response, extras: dict) -> Response:
    """The same page for every anonymous reader may be cached; a reader's own page may not."""
    slot = extras["prompt_slot"]
    if slot is not None:
        prompt_reader.remember(response, slot)
    # A CSRF token put in a form (Flask-WTF keeps it in g) ties the page to its reader's session.
    # (Not session.accessed: since Flask 3.1 merely looking at it sets it.)
    if extras["personal"] or "csrf_token" in g:
        response.headers["Cache-Control"] = "private, no-cache"
    else:
        response.headers["Cache-Control"] = f"public, max-age={current_app.config['ARTICLE_MAX_AGE']}"
    return response


def reads_everything() -> bool:
    """Whether this request's reader may read members-only stories (members, in grace too)."""
    return prompt_reader.reader_standing()[0] in READS_CLEAN


@bp.app_template_filter("lede_length")
def lede_length(article: Article) -> int:
    return articles.lede_length(article)


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
