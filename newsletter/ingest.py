"""`newsletter ingest`: files, folders and feeds in, one slug per article out.

The domain part turns a path or a URL into Outcomes (`ingest_path`, `start_fetches`,
`fetch_outcomes`) so the console or an API can call it; the command only prints them.
Feed URLs are fetched by a worker (feeds.run_fetch); the command waits for its row.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from newsletter import articles, db, feeds, seedformat
from newsletter.models import FeedFetch

FEED_SUFFIXES = {".xml", ".rss", ".atom"}
_XML_START = re.compile(rb"\s*<(?:\?xml|rss\b|feed\b|rdf:RDF\b)")
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
POLL_SECONDS = 0.2


@dataclass
class Outcome:
    """One imported article (its slug) or one failure (its message) of a source."""

    source: str
    slug: str | None = None
    error: str | None = None


# ---------------------------------------------------------------- local sources

def ingest_path(session: Session, path: Path) -> list[Outcome]:
    """Import a seed file, a folder of them or a feed file; one Outcome per article or error."""
    if path.is_dir():
        return ingest_folder(session, path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [Outcome(str(path), error=exc.strerror or str(exc))]
    if is_feed(path, data):
        return ingest_feed_file(session, path, data)
    return [ingest_seed(session, path, data)]


def ingest_folder(session: Session, folder: Path) -> list[Outcome]:
    """Import every *.txt in `folder`, in name order."""
    files = sorted(p for p in folder.glob("*.txt") if p.is_file())
    if not files:
        return [Outcome(str(folder), error="no *.txt files in this folder")]
    return [outcome for path in files for outcome in ingest_path(session, path)]


def ingest_seed(session: Session, path: Path, data: bytes) -> Outcome:
    """Import one seed-format file, keyed by its front matter id or url, else its name."""
    try:
        parsed = seedformat.parse(seedformat.decode(data))
    except seedformat.InvalidArticle as exc:
        return Outcome(str(path), error=str(exc))
    article, _created = articles.save(session, parsed, articles.source_key(parsed, f"file:{path.stem}"))
    return Outcome(str(path), slug=article.slug)


def ingest_feed_file(session: Session, path: Path, data: bytes) -> list[Outcome]:
    """Import every entry of an RSS or Atom file."""
    try:
        result = feeds.ingest_feed(session, data)
    except feeds.FeedError as exc:
        return [Outcome(str(path), error=str(exc))]
    return feed_outcomes(str(path), result.slugs, result.errors)


def is_feed(path: Path, data: bytes) -> bool:
    """A feed by its name (.xml, .rss, .atom) or by content that opens like RSS/Atom XML."""
    return path.suffix.lower() in FEED_SUFFIXES or bool(_XML_START.match(data.removeprefix(b"\xef\xbb\xbf")))


def feed_outcomes(source: str, slugs: list[str], errors: list[str]) -> list[Outcome]:
    """Outcomes of one feed: its slugs, then its entries' errors."""
    return [Outcome(source, slug=s) for s in slugs] + [Outcome(source, error=e) for e in errors]


# ---------------------------------------------------------------- URLs, fetched by workers

def is_url(source: str) -> bool:
    """True for an absolute http(s) URL, which a worker fetches."""
    parts = urlsplit(source)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def start_fetches(session: Session, urls: list[str]) -> list[tuple[int, str]]:
    """Queue a worker fetch of each URL; (fetch id, url) pairs to wait on after the commit."""
    return [(feeds.queue_fetch(session, url).id, url) for url in urls]


def fetch_outcomes(session: Session, fetches: list[tuple[int, str]], timeout: float) -> list[Outcome]:
    """Wait up to `timeout` seconds in all for the workers; the outcomes of each fetch."""
    deadline = time.monotonic() + timeout
    outcomes = []
    for fetch_id, url in fetches:
        fetch = wait_for_fetch(session, fetch_id, deadline)
        if fetch is None:
            message = f"no worker finished the fetch of {url} within {timeout:g} s; is a worker running?"
            outcomes.append(Outcome(url, error=message))
        else:
            outcomes.extend(feed_outcomes(url, fetch.slugs, fetch.errors))
    return outcomes


def wait_for_fetch(session: Session, fetch_id: int, deadline: float) -> FeedFetch | None:
    """The finished FeedFetch row, or None when `deadline` (monotonic) passes first.

    Each look ends the session's transaction, so call it after committing your own work.
    """
    while True:
        # End the read transaction each time: SQLite would keep showing its old snapshot.
        session.rollback()
        fetch = session.get(FeedFetch, fetch_id, populate_existing=True)
        if fetch.state != "queued":
            return fetch
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


# ---------------------------------------------------------------- the command

def ingest_sources(session: Session, sources: list[str]) -> tuple[list[Outcome], list[tuple[int, str]]]:
    """Import the local sources and queue the URLs; the caller commits, then waits."""
    outcomes, urls = [], []
    for source in sources:
        if db.holds_nul(source):  # in no file name or URL, and PostgreSQL refuses it in a fetch's row
            outcomes.append(Outcome(source, error="a path or URL cannot hold a NUL character"))
        elif is_url(source):
            urls.append(source)
        elif _SCHEME.match(source):
            outcomes.append(Outcome(source, error="only http(s) URLs can be fetched"))
        else:
            outcomes.extend(ingest_path(session, Path(source)))
    return outcomes, start_fetches(session, urls)


@click.command("ingest")
@click.argument("sources", nargs=-1, required=True, metavar="PATH_OR_URL...")
@click.option("--timeout", type=click.FloatRange(min=0), default=120, show_default=True,
              help="Seconds to wait for the workers that fetch feed URLs.")
@with_appcontext
def ingest_command(sources: tuple[str, ...], timeout: float) -> None:
    """Import seed-format files, folders of them and RSS/Atom feeds; print one slug per article."""
    session = db.session()
    outcomes, fetches = ingest_sources(session, list(sources))
    session.commit()
    _print(outcomes)
    remote = fetch_outcomes(session, fetches, timeout)
    _print(remote)
    if any(o.error for o in outcomes + remote):
        raise SystemExit(1)


def _print(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.error:
            click.echo(f"error: {outcome.source}: {outcome.error}", err=True)
        else:
            click.echo(outcome.slug)
