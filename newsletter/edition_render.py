"""The Daily Edition as mail: rendered once per version and audience, filled per recipient.

`prepare` renders templates/email/edition/ (newsletter.emails: Jinja, then css-inline on
the rendered HTML) with marker strings where the per-recipient values go (greeting, the
address, the unsubscribe and manage links), and serializes the message around them once
(newsletter.mail_skeleton). `PreparedEdition.message_bytes` then makes one recipient's
complete RFC 5322 message by joining bytes, optionally DKIM-signed (newsletter.dkim).

Prepared editions are cached per process (`prepared_cache`), keyed by the edition's id,
version and audience and by what the render read (the stories' `updated_at`, the
settings), so a worker renders an edition once per version, and a correction to a story
reaches the next batch even before anyone bumped the version.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import format_datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter import articles, editions, emails, links
from newsletter.addresses import for_transport
from newsletter.dkim import DkimSigner, signer_from_config
from newsletter.mail_skeleton import Skeleton, Slots, address_line, ascii_value, header_line
from newsletter.models import Article, Edition, EditionArticle, Subscriber

AUDIENCES = ("public", "members")
SLOTS = ("greeting", "email", "unsubscribe_url", "manage_url")
GREETING, GREETING_ANONYMOUS = "Hello {name},", "Hello,"
# Hidden characters after the preheader, so that inbox previews stop there instead of
# running on into the mail's first lines.
PREHEADER_PADDING = "\u034f\u200c\u00a0" * 40
CACHE_SIZE = 8
TEST_PREFIX = "[TEST] "
SAMPLE_TOKEN = "sample"   # not a valid signed token: the link shows the "link problem" page


@dataclass(frozen=True)
class PreparedEdition:
    """One edition version rendered for one audience, ready to fill per recipient."""

    edition_id: int
    version: int
    audience: str
    subject: str
    skeleton: Skeleton
    base_url: str
    secret_key: str
    list_unsubscribe: tuple[bytes, bytes] = field(repr=False)  # the header line around the URL
    dkim: DkimSigner | None = None

    def message_bytes(self, *, to: str, name: str, unsubscribe_url: str, manage_url: str,
                      message_id: str, date: datetime | None = None) -> bytes:
        """The complete message for one recipient, CRLF line ends, signed when DKIM is set."""
        before, after = self.list_unsubscribe
        lines = {
            "To": address_line("To", name, to if to.isascii() else for_transport(to)),
            "Date": header_line("Date", format_datetime(date or datetime.now(timezone.utc))),
            "Message-ID": header_line("Message-ID", message_id if message_id.startswith("<")
                                      else f"<{message_id}>"),
            "List-Unsubscribe": before + ascii_value("List-Unsubscribe", unsubscribe_url) + after,
        }
        values = {"greeting": greeting(name), "email": to, "unsubscribe_url": unsubscribe_url,
                  "manage_url": manage_url}
        message = self.skeleton.fill(lines, values)
        return self.dkim.sign(message) if self.dkim else message

    def message_for(self, subscriber: Subscriber, *, message_id: str,
                    date: datetime | None = None) -> bytes:
        """`message_bytes` for a subscriber, with their own signed links (newsletter.links)."""
        return self.message_bytes(
            to=subscriber.email, name=subscriber.name, message_id=message_id, date=date,
            unsubscribe_url=links.unsubscribe_url(self.base_url, subscriber, self.secret_key),
            manage_url=links.manage_url(self.base_url, subscriber, self.secret_key))

    def with_subject(self, subject: str) -> PreparedEdition:
        """A copy under another subject, e.g. "[TEST] …" for a test send."""
        return replace(self, subject=subject, skeleton=self.skeleton.with_header("Subject", subject))


def sample_message(prepared: PreparedEdition, *, to: str, name: str = "",
                   message_id: str, test: bool = False) -> bytes:
    """The message as `to` would get it, with links that unsubscribe nobody (a preview, a
    test send: marked "[TEST]" in its subject when `test`)."""
    if test:
        prepared = prepared.with_subject(f"{TEST_PREFIX}{prepared.subject}")
    inert = f"{prepared.base_url}/newsletter/unsubscribe/{SAMPLE_TOKEN}"
    return prepared.message_bytes(to=to, name=name, unsubscribe_url=inert, message_id=message_id,
                                  manage_url=f"{prepared.base_url}/newsletter/manage/{SAMPLE_TOKEN}")


def greeting(name: str) -> str:
    """The greeting line for a reader called `name` (may be empty)."""
    name = " ".join(name.split())
    return GREETING.format(name=name) if name else GREETING_ANONYMOUS


# ---------------------------------------------------------------- preparing

def prepare(session: Session, edition_id: int, *, base_url: str, mail_from: str,
            list_id: str | None, publication: str, secret_key: str, audience: str = "public",
            reply_to: str | None = None, unsubscribe_mailto: str = "",
            dkim: DkimSigner | None = None) -> PreparedEdition:
    """The edition's current version rendered for `audience`, from the cache when it is there."""
    if audience not in AUDIENCES:
        raise ValueError(f"unknown audience {audience!r} (known: {', '.join(AUDIENCES)})")
    settings = (base_url.rstrip("/"), mail_from, list_id, publication, secret_key, reply_to,
                unsubscribe_mailto, dkim)
    key = (edition_id, *_state(session, edition_id), audience, settings)
    return prepared_cache.get(key, lambda: _prepare(session, edition_id, audience, *settings))


def settings_from_config(config) -> dict:
    """`prepare`'s keyword arguments from an app's configuration (DKIM key checked now)."""
    return {"base_url": config["BASE_URL"], "mail_from": config["MAIL_FROM"],
            "list_id": config.get("LIST_ID"), "publication": config["PUBLICATION_NAME"],
            "secret_key": config["SECRET_KEY"], "reply_to": config.get("REPLY_TO"),
            "unsubscribe_mailto": config.get("LIST_UNSUBSCRIBE_MAILTO") or "",
            "dkim": signer_from_config(config)}


def _state(session: Session, edition_id: int) -> tuple:
    # Read from the database, not the session's identity map, which may hold an old version.
    row = session.execute(select(Edition.version, Edition.created_at)
                          .where(Edition.id == edition_id)).first()
    if row is None:
        raise editions.EditionNotFound(edition_id)
    stamps = session.execute(
        select(Article.id, Article.updated_at).join(EditionArticle, EditionArticle.article_id == Article.id)
        .where(EditionArticle.edition_id == edition_id).order_by(EditionArticle.position)).all()
    return row.version, row.created_at, tuple(map(tuple, stamps))


def _prepare(session: Session, edition_id: int, audience: str, base_url: str, mail_from: str,
             list_id: str | None, publication: str, secret_key: str, reply_to: str | None,
             unsubscribe_mailto: str, dkim: DkimSigner | None) -> PreparedEdition:
    edition = session.get(Edition, edition_id, populate_existing=True)
    stories = editions.edition_articles(session, edition)
    for story in stories:
        session.refresh(story)  # a correction committed since this session loaded it
    slots = Slots(SLOTS)
    context = edition_mail(edition, stories, base_url=base_url, publication=publication,
                           audience=audience, markers=slots.markers)
    rendered = emails.render("edition", context)
    marker_url = slots.markers["unsubscribe_url"]
    unsubscribe = emails.list_headers(marker_url, unsubscribe_mailto or mail_from, list_id)
    headers = [("From", mail_from), *([("Reply-To", reply_to)] if reply_to else []),
               ("To", None), ("Subject", rendered.subject), ("Date", None), ("Message-ID", None),
               ("List-Id", unsubscribe["List-Id"]), ("List-Unsubscribe", None),
               ("List-Unsubscribe-Post", unsubscribe["List-Unsubscribe-Post"])]
    skeleton = Skeleton(headers, [("plain", rendered.text), ("html", rendered.html)], slots)
    before, _, after = unsubscribe["List-Unsubscribe"].partition(marker_url)
    # Folded before the mailto address: one address a line keeps the lines short.
    list_unsubscribe = (f"List-Unsubscribe: {before}".encode(),
                        after.replace(", <mailto:", ",\r\n <mailto:").encode() + b"\r\n")
    return PreparedEdition(edition.id, edition.version, audience, rendered.subject, skeleton,
                           base_url, secret_key, list_unsubscribe, dkim)


def edition_mail(edition: Edition, stories: list[Article], *, base_url: str, publication: str,
                 audience: str, markers: dict[str, str]) -> dict:
    """The context of templates/email/edition/: the edition, and markers for the reader's parts."""
    return {
        "publication": publication,
        "subject": edition.subject,
        "preheader": edition.preheader,
        "preheader_padding": PREHEADER_PADDING,
        "date_label": editions.date_label(edition.date),
        "intro": [p.strip() for p in edition.intro.split("\n\n") if p.strip()],
        "stories": [story_block(story, base_url) for story in stories],
        "audience": audience,
        "membership_url": f"{base_url}/",
        **markers,
    }


def story_block(article: Article, base_url: str) -> dict:
    """What the edition shows of one story: headline, lede, link, first photo caption."""
    photos = articles.images(article)
    return {
        "headline": article.headline,
        "lede": next(iter(articles.paragraphs(article)), ""),
        "url": f"{base_url}/articles/{article.slug}",
        "photo": photos[0] if photos else None,
        "members_only": article.access == "members",
    }


# ---------------------------------------------------------------- the cache

class PreparedCache:
    """The last few prepared editions of this process, least recently used out first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.renders = 0   # how many times an edition was rendered: the tests count them
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, build) -> PreparedEdition:
        """The prepared edition under `key`, built (rendered) when it is not there."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        prepared = build()
        with self._lock:
            self.renders += 1
            self._items[key] = prepared
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return prepared

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


prepared_cache = PreparedCache(CACHE_SIZE)
