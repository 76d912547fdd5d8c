"""Per-recipient cost of an edition: fill the prepared message vs build an EmailMessage.

    python bench/edition_fill.py [--recipients 20000] [--stories 8]

Renders one edition of `--stories` stories (SQLite in a temporary folder), then times
`PreparedEdition.message_bytes` per recipient (ASCII name, non-ASCII name, no name),
`message_for` (adds the two signed links), the standard library's EmailMessage
build + serialize of the same rendered parts (the naive way), and DKIM signing.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from newsletter import create_app, db, edition_render, editions, emails  # noqa: E402
from newsletter.models import Article, Subscriber  # noqa: E402

LEDE = ("Negotiators from both sides said on Tuesday night that they had reached an agreement "
        "after three weeks of talks, though several details remain to be settled next month.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--stories", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/bench.db", "SECRET_KEY": "bench",
                          "INSTANCE_PATH": tmp, "BASE_URL": "https://news.example.org",
                          "MAIL_FROM": "The Daily Edition <daily@news.example.org>"})
        db.upgrade(app)
        with app.app_context():
            run(db.session(), app.config, args)
        db.engine(app).dispose()


def run(session, config, args) -> None:
    edition = make_edition(session, args.stories)
    settings = edition_render.settings_from_config(config)
    started = time.perf_counter()
    prepared = edition_render.prepare(session, edition.id, **settings)
    print(f"render once (Jinja + css-inline + skeleton): {(time.perf_counter() - started) * 1e3:.1f} ms")
    started = time.perf_counter()
    edition_render.prepare(session, edition.id, **settings)
    print(f"prepare again (cache hit, 2 queries):        {(time.perf_counter() - started) * 1e3:.2f} ms")
    size = len(prepared.message_bytes(**recipient(0, "Zoë Åström")))
    print(f"message size: {size} bytes, {args.recipients} recipients per measurement")
    for label, name in (("ASCII name", "Sam Reader"), ("non-ASCII name", "Zoë Åström"), ("no name", "")):
        report(f"message_bytes, {label}", args.recipients,
               lambda n: prepared.message_bytes(**recipient(n, name)))
    subscriber = Subscriber(id=7, email="zoe@example.org", name="Zoë Åström", token_key="k" * 32)
    report("message_for (+ signed links)", args.recipients,
           lambda n: prepared.message_for(subscriber, message_id=f"<e1.s{n}@news.example.org>"))
    rendered = emails.render("edition", edition_render.edition_mail(
        edition, editions.edition_articles(session, edition), base_url=settings["base_url"],
        publication=settings["publication"], audience="public",
        markers={"greeting": "Hello Zoë Åström,", "email": "zoe@example.org",
                 "unsubscribe_url": "u", "manage_url": "m"}))
    report("EmailMessage build + as_bytes (naive)", max(args.recipients // 10, 100),
           lambda n: emails.build_message(rendered, "zoe@example.org", settings["mail_from"]).as_bytes())
    signed = edition_render.prepare(session, edition.id, **settings | {"dkim": dkim_signer()})
    report("message_bytes + DKIM (RSA-2048)", 100, lambda n: signed.message_bytes(**recipient(n, "Zoë")))


def recipient(n: int, name: str) -> dict:
    token = f"{n}.{n:032x}"
    return {"to": f"reader{n}@example.org", "name": name, "message_id": f"<e1.s{n}@news.example.org>",
            "unsubscribe_url": f"https://news.example.org/newsletter/unsubscribe/{token}",
            "manage_url": f"https://news.example.org/newsletter/manage/{token}",
            "date": datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)}


def make_edition(session, stories: int):
    day = date(2026, 11, 25)
    for n in range(stories):
        session.add(Article(source_key=f"bench:{n}", slug=f"story-{n}", headline=f"Story {n}: talks end in a deal",
                            body=[{"type": "paragraph", "text": LEDE},
                                  {"type": "image", "caption": "Delegates at the table.", "credit": "Jo Lens/Agency"},
                                  {"type": "paragraph", "text": "More."}],
                            published_at=datetime(2026, 11, 25, 6, tzinfo=timezone.utc) + timedelta(minutes=n)))
    session.flush()
    edition = editions.create_edition(session, day=day, slugs=None, count=stories, tz="UTC",
                                      intro="Good morning from the newsroom.")
    session.commit()
    return edition


def report(label: str, count: int, make) -> None:
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        for n in range(count):
            make(n)
        runs.append((time.perf_counter() - started) / count * 1e6)
    print(f"{label:40} {statistics.median(runs):9.1f} µs per message ({1e6 / statistics.median(runs):,.0f}/s)")


def dkim_signer():
    import subprocess

    from newsletter.dkim import make_signer
    key = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, check=True).stdout.decode()
    return make_signer(key, "bench", "news.example.org")


if __name__ == "__main__":
    main()
