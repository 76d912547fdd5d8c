"""`newsletter ingest`: files, folders, feed files and feed URLs fetched by a real worker."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter import articles, ingest
from newsletter.models import Article, FeedFetch
from tests.conftest import SEED_DIR
from tests.support.feedserver import FeedServer, closed_port

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_SLUG = "sharaa-says-trump-backs-full-israeli-withdrawal-from-syria"
RSS_SLUGS = ["council-approves-the-harbour-plan", "ferry-timetable-changes-what-they-mean"]
RSS_EMPTY_ENTRY = "http://newsroom.test/2025/11/empty: no story paragraphs (empty, or only promotional text)"


@pytest.fixture
def feed_server():
    server = FeedServer()
    yield server
    server.stop()


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def invoke(runner, *args):
    return runner.invoke(args=["ingest", *map(str, args)])


def stored_slugs(app) -> list[str]:
    from newsletter import db

    with app.app_context():
        return sorted(db.session().scalars(select(Article.slug)))


# ---------------------------------------------------------------- files and folders

def test_seed_file_prints_its_slug(runner, app):
    result = invoke(runner, SEED_DIR / "000_53c50bb64dfc6dfa.txt")
    assert result.exit_code == 0, result.output
    assert result.stdout == SAMPLE_SLUG + "\n" and result.stderr == ""
    assert stored_slugs(app) == [SAMPLE_SLUG]


def test_ingesting_a_file_again_keeps_its_slug(runner, app, tmp_path):
    path = write(tmp_path, "story.txt", "First version. More.\nSecond line.")
    assert invoke(runner, path).stdout == "first-version\n"
    write(tmp_path, "story.txt", "---\nheadline: A better headline\n---\nFirst version, edited.")
    assert invoke(runner, path).stdout == "first-version\n"
    with app.app_context():
        from newsletter import db

        assert articles.get(db.session(), "first-version").headline == "A better headline"


def test_folder_imports_every_txt_in_name_order(runner, app, tmp_path):
    write(tmp_path, "b.txt", "Bravo story.")
    write(tmp_path, "a.txt", "Alpha story.")
    write(tmp_path, "notes.md", "Not an article.")
    shutil.copy(SEED_DIR / "000_53c50bb64dfc6dfa.txt", tmp_path / "000.txt")
    result = invoke(runner, tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [SAMPLE_SLUG, "alpha-story", "bravo-story"]


@pytest.mark.parametrize("name, content, message", [
    ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", "binary content"),
    ("latin1.txt", b"caf\xe9 au lait", "not valid UTF-8"),
    ("empty.txt", b"", "empty text"),
    ("promo.txt", "Sign up for our newsletter\nBy signing up, you agree to the terms", "no story paragraphs"),
    ("bad-date.txt", "---\npublished_at: soon\n---\nStory.", "published_at"),
    ("broken.xml", (FIXTURES / "broken.xml").read_bytes(), "not a readable RSS or Atom feed"),
])
def test_bad_file_is_one_error_line(runner, app, tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    result = invoke(runner, path)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert stored_slugs(app) == []


@pytest.mark.parametrize("source, message", [
    ("/no/such/file.txt", "No such file or directory"),
    ("ftp://example.test/feed", "only http(s) URLs can be fetched"),
])
def test_missing_paths_and_other_schemes(runner, source, message):
    result = invoke(runner, source)
    assert result.exit_code == 1 and result.stderr == f"error: {source}: {message}\n"


def test_empty_folder_is_an_error(runner, tmp_path):
    result = invoke(runner, tmp_path)
    assert result.exit_code == 1 and "no *.txt files" in result.stderr


def test_good_items_are_imported_even_when_others_fail(runner, app, tmp_path):
    good = write(tmp_path, "good.txt", "A good story.")
    bad = write(tmp_path, "bad.bin", b"\x00\x01\x02")
    result = invoke(runner, bad, good, FIXTURES / "feed.rss")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["a-good-story", *RSS_SLUGS]
    assert result.stderr.splitlines() == [
        f"error: {bad}: binary content (NUL bytes), not a text article",
        f"error: {FIXTURES / 'feed.rss'}: {RSS_EMPTY_ENTRY}",
    ]
    assert stored_slugs(app) == sorted(["a-good-story", *RSS_SLUGS])


# ---------------------------------------------------------------- feed files

def test_feed_files_by_suffix(runner):
    result = invoke(runner, FIXTURES / "feed.atom")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["storm-closes-the-coast-road", "museum-reopens"]


def test_feed_file_sniffed_by_content(runner, tmp_path):
    path = write(tmp_path, "feed.txt", (FIXTURES / "feed.atom").read_bytes())
    assert invoke(runner, path).stdout.splitlines() == ["storm-closes-the-coast-road", "museum-reopens"]


def test_is_feed():
    assert ingest.is_feed(Path("x.rss"), b"")
    assert ingest.is_feed(Path("x.txt"), b"\xef\xbb\xbf  <?xml version='1.0'?><rss>")
    assert not ingest.is_feed(Path("x.txt"), b"<script>alert(1)</script> is text")


# ---------------------------------------------------------------- URLs, through a worker

def test_url_without_a_worker_times_out_clearly(runner, app):
    url = "http://127.0.0.1:9/feed"
    result = invoke(runner, url, "--timeout", "0.5")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (f"error: {url}: no worker finished the fetch of {url} within 0.5 s;"
                             " is a worker running?\n")
    with app.app_context():
        from newsletter import db

        assert db.session().scalar(select(FeedFetch.state)) == "queued"


@pytest.mark.slow
def test_urls_are_fetched_by_a_worker_while_the_command_waits(runner, app, worker, feed_server):
    url = feed_server.route("/feed.rss", (FIXTURES / "feed.rss").read_bytes())
    worker()
    result = invoke(runner, url, "--timeout", "60")
    assert result.exit_code == 1  # the feed's empty entry
    assert result.stdout.splitlines() == RSS_SLUGS
    assert result.stderr == f"error: {url}: {RSS_EMPTY_ENTRY}\n"

    unreachable = f"http://127.0.0.1:{closed_port()}/feed"
    local = FIXTURES / "feed.atom"
    result = invoke(runner, url, unreachable, local, "--timeout", "60")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["storm-closes-the-coast-road", "museum-reopens", *RSS_SLUGS]
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and errors[0] == f"error: {url}: {RSS_EMPTY_ENTRY}"
    assert errors[1].startswith(f"error: {unreachable}: cannot reach 127.0.0.1:")
    with app.app_context():
        from newsletter import db

        assert db.session().scalar(select(func.count()).select_from(Article)) == 4
        assert sorted(db.session().scalars(select(FeedFetch.state))) == ["done", "done", "failed"]
