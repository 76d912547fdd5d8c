"""RSS and Atom feeds: fetching a feed URL (a worker's job) and ingesting its entries.

A fetch is a FeedFetch row: `queue_fetch` makes it and queues "feeds.fetch" after the
commit; `run_fetch` downloads the URL, stores each entry as an article and writes the
slugs, the per-entry errors and the state (done, or failed with one line) on the row.
"""
from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import urlsplit

import feedparser
import nh3
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter import articles, db, queue, seedformat
from newsletter.models import FeedFetch, utcnow
from newsletter.seedformat import InvalidArticle, ParsedArticle, article_from_blocks, shorten

USER_AGENT = "newsletter-feed-fetcher/1.0"
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
# Beat queues a configured feed again once its last queued fetch is this old (a lost task).
STALE_FETCH = timedelta(hours=1)


class FeedError(Exception):
    """The feed as a whole could not be fetched or read; the message is one line."""


class FetchNotFound(LookupError):
    """No FeedFetch row has that id."""


@dataclass
class FeedResult:
    """What ingesting one feed gave: the stored articles' slugs, one line per bad entry."""

    slugs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- queuing and running

def queue_fetch(session: Session, url: str) -> FeedFetch:
    """A new FeedFetch row for `url`; a worker fetches it once the session commits."""
    check_url(url)
    fetch = FeedFetch(url=url, state="queued", slugs=[], errors=[])
    session.add(fetch)
    session.flush()
    queue.enqueue(session, "feeds.fetch", fetch.id)
    return fetch


def queue_configured(session: Session, urls) -> list[FeedFetch]:
    """Queue a fetch of every configured feed that has no recent one still waiting."""
    return [queue_fetch(session, url) for url in feed_urls(urls) if not _waiting(session, url)]


def feed_urls(value) -> list[str]:
    """FEEDS as a list: a list already, a JSON list, or URLs separated by spaces or commas."""
    if isinstance(value, str):
        value = json.loads(value) if value.lstrip().startswith("[") else value.replace(",", " ").split()
    return [url.strip() for url in value or () if url.strip()]


def _waiting(session: Session, url: str) -> bool:
    recent = utcnow() - STALE_FETCH
    query = select(FeedFetch.id).where(FeedFetch.url == url, FeedFetch.state == "queued",
                                       FeedFetch.created_at > recent)
    return session.scalar(query.limit(1)) is not None


def run_fetch(session: Session, fetch_id: int) -> FeedFetch:
    """Fetch the row's URL and ingest its entries, once: a finished row is left as it is."""
    fetch = session.get(FeedFetch, fetch_id)
    if fetch is None:
        raise FetchNotFound(fetch_id)
    if fetch.state != "queued":
        return fetch
    config = current_app.config
    try:
        data = download(fetch.url, config["FEED_FETCH_TIMEOUT"], config["FEED_MAX_BYTES"])
        result = ingest_feed(session, data)
    except FeedError as exc:
        fetch.state, fetch.errors, fetch.slugs = "failed", [str(exc)], []
    else:
        fetch.state, fetch.errors, fetch.slugs = "done", result.errors, result.slugs
    fetch.finished_at = utcnow()
    session.flush()
    return fetch


# ---------------------------------------------------------------- downloading

def check_url(url: str) -> None:
    """FeedError unless `url` is an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FeedError(f"not an http(s) URL: {url[:200]!r}")


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would also follow a redirect to ftp://; a feed lives on the web only.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def download(url: str, timeout: float, max_bytes: int) -> bytes:
    """The body at `url`, or FeedError with one line saying what went wrong."""
    check_url(url)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": ACCEPT})
    try:
        with urllib.request.build_opener(_HttpOnlyRedirects).open(request, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise FeedError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or exc.reason
        raise FeedError(f"cannot reach {urlsplit(url).netloc}: {reason}") from None
    except TimeoutError:
        raise FeedError(f"no answer from {urlsplit(url).netloc} within {timeout} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise FeedError(f"download failed: {exc.__class__.__name__}: {exc}") from None
    if len(data) > max_bytes:
        raise FeedError(f"feed is larger than {max_bytes} bytes")
    return data


# ---------------------------------------------------------------- reading and ingesting

def ingest_feed(session: Session, data: bytes) -> FeedResult:
    """Store every entry of the feed in `data`; entries that cannot be stored are errors."""
    result = FeedResult()
    for entry in feed_entries(data):
        try:
            key, parsed = entry_article(entry)
        except InvalidArticle as exc:
            result.errors.append(f"{entry_label(entry)}: {exc}")
            continue
        article, _created = articles.save(session, parsed, key)
        result.slugs.append(article.slug)
    return result


def feed_entries(data: bytes) -> list:
    """The entries of an RSS or Atom document, or FeedError when it is not one."""
    feed = feedparser.parse(data)
    if feed.bozo and not feed.entries:
        raise FeedError(f"not a readable RSS or Atom feed: {_one_line(feed.get('bozo_exception'))}")
    if not feed.entries and not feed.get("version"):
        raise FeedError("not an RSS or Atom feed")
    return list(feed.entries)


def entry_article(entry) -> tuple[str, ParsedArticle]:
    """The source key (entry id, else link) and the article of one feed entry."""
    key = entry.get("id") or entry.get("link")
    if not key:
        raise InvalidArticle("entry has neither an id nor a link")
    meta = {
        "headline": shorten(_title(entry), 300),
        "byline": shorten(entry.get("author", "").strip(), 300),
        "published_at": _published(entry),
        "url": _link(entry),
        "tags": [t.get("term", "").strip() for t in entry.get("tags", ()) if t.get("term", "").strip()],
        "source_id": entry.get("id", ""),
    }
    parsed = article_from_blocks(_body_blocks(entry), **meta)
    if _holds_nul(key, parsed):  # raw, or a &#0; that feedparser decodes: refused as in a seed file
        raise InvalidArticle("binary content (a NUL character), which PostgreSQL cannot store")
    return key, parsed


def _holds_nul(key: str, parsed: ParsedArticle) -> bool:
    texts = [key, parsed.headline, parsed.byline, parsed.url, parsed.source_id, *parsed.tags, *parsed.notes]
    texts += [value for block in parsed.blocks for value in block.values() if isinstance(value, str)]
    return any(db.holds_nul(text) for text in texts)


def entry_label(entry) -> str:
    """How an error names an entry: its link, id or title."""
    return entry.get("link") or entry.get("id") or entry.get("title") or "entry without id"


def _title(entry) -> str:
    detail = entry.get("title_detail") or {}
    title = entry.get("title", "")
    if "html" in detail.get("type", ""):
        title = " ".join(b.get("text", "") for b in html_blocks(title))
    return " ".join(title.split())


def _link(entry) -> str:
    link = entry.get("link", "")
    return link if len(link) <= 1000 and urlsplit(link).scheme in ("http", "https") else ""


def _published(entry) -> datetime | None:
    moment = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime(*moment[:6], tzinfo=timezone.utc) if moment else None


def _body_blocks(entry) -> list[dict]:
    # Atom's <content> (RSS's content:encoded) holds the story; the summary may be a teaser.
    candidates = list(entry.get("content") or ()) + [entry.get("summary_detail") or {}]
    for detail in candidates:
        value = detail.get("value", "")
        if value.strip():
            return html_blocks(value) if "html" in detail.get("type", "html") else plain_blocks(value)
    return []


def _one_line(exc) -> str:
    # expat names the document "<unknown>": "<unknown>:2:0: syntax error" → "line 2:0: …"
    message = " ".join(str(exc or "unknown error").split())
    return "line " + message.removeprefix("<unknown>:") if message.startswith("<unknown>:") else message


# ---------------------------------------------------------------- entry bodies

BLOCK_TAGS = {"p", "div", "br", "hr", "li", "ul", "ol", "blockquote", "pre", "table", "tr",
              "section", "article", "header", "footer", "aside", "details", "summary",
              "h1", "h2", "h3", "h4", "h5", "h6", "dl", "dt", "dd"}


def html_blocks(html: str) -> list[dict]:
    """Paragraph and photo caption blocks of an entry's HTML, after nh3 sanitised it."""
    collector = _BlockCollector()
    collector.feed(nh3.clean(html))
    collector.close()
    return collector.blocks


def plain_blocks(text: str) -> list[dict]:
    """Blocks of a plain-text entry body, read like seed-format lines."""
    return seedformat.text_blocks([line.strip() for line in text.splitlines()])


class _BlockCollector(HTMLParser):
    """Block elements end paragraphs; a <figure> gives a caption (figcaption or img alt)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[dict] = []
        self._text: list[str] = []
        self._figure: dict | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "figure":
            self._end_paragraph()
            self._figure = {"caption": [], "credit": [], "alt": "", "cite": False}
        elif tag == "img":
            self._image_alt(dict(attrs).get("alt") or "")
        elif tag == "cite" and self._figure:
            self._figure["cite"] = True
        elif tag in BLOCK_TAGS:
            self._end_paragraph()

    def handle_endtag(self, tag):
        if tag == "figure" and self._figure:
            self._end_figure()
        elif tag == "cite" and self._figure:
            self._figure["cite"] = False
        elif tag in BLOCK_TAGS:
            self._end_paragraph()

    def handle_data(self, data):
        if self._figure:
            self._figure["credit" if self._figure["cite"] else "caption"].append(data)
        else:
            self._text.append(data)

    def close(self):
        super().close()
        if self._figure:
            self._end_figure()
        self._end_paragraph()

    def _end_paragraph(self) -> None:
        text = _squeeze(self._text)
        self._text = []
        if text:
            self.blocks.append(seedformat.paragraph(text))

    def _image_alt(self, alt: str) -> None:
        if self._figure:
            self._figure["alt"] = alt
            return
        caption, credit = seedformat.split_caption(alt)
        if credit:  # a bare <img> is a photo worth keeping only when its alt names a credit
            self._end_paragraph()
            self.blocks.append(seedformat.image(caption, credit))

    def _end_figure(self) -> None:
        figure, self._figure = self._figure, None
        caption, credit = seedformat.split_caption(_squeeze(figure["caption"]) or figure["alt"])
        credit = _squeeze(figure["credit"]) or credit
        if caption or credit:
            self.blocks.append(seedformat.image(caption, credit))


def _squeeze(parts: list[str]) -> str:
    return " ".join("".join(parts).split())
