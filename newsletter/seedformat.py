"""The seed format: plain UTF-8 text, one paragraph per line (CONTRACT.md).

An optional front matter block between `---` lines holds `key: value` pairs (KEYS). A
line that follows an empty line and ends in a parenthesised credit, `Caption. (Name/AP)`,
is a photo caption. Promotional boxes copied in with the text are dropped (PROMO_BOXES);
closing lines such as "Agencies contributed to this report." become notes.

Text is kept verbatim: quotes stay curly and `<script>` stays text; escaping is the
templates' job. Feeds reuse `article_from_blocks` so their entries are cleaned alike.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone

from newsletter.promoboxes import remove_promo_boxes

HEADLINE_MAX = 100      # a derived headline, ellipsis included
ACCESS_LEVELS = ("public", "members")
KEYS = ("headline", "byline", "published_at", "url", "section", "tags", "access", "id")
# Column sizes of Article (models.py): longer front matter values are refused, not cut.
LIMITS = {"headline": 300, "byline": 300, "section": 100, "url": 500, "id": 480}

_CAPTION = re.compile(r"(?P<caption>.*\S)\s*\((?P<credit>[^()]*[^()\s][^()]*)\)")
_NOTE = re.compile(
    r".{1,150}\bcontributed to this (?:report|story|article)\.?"
    r"|(?:additional |with )?reporting by\b.{1,200}"
    r"|(?:writing|written|editing|edited) by\b.{1,200}"
    r"|this (?:story|article|report|post) (?:has been|was) (?:updated|corrected)\b.{0,200}",
    re.IGNORECASE)
# A sentence ends at . ! ? (maybe inside closing quotes) before a space, but not after an
# initial or a short title ("Mr.", "U.S.", "Dr.", "Mrs.").
_SENTENCE_END = re.compile(r"(?<!\b[A-Z])(?<!\b[A-Z][a-z])(?<!\bMrs)[.!?…][\"”’')\]]*(?=\s)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class InvalidArticle(ValueError):
    """The text is not a usable article; the message says why, in one line."""


@dataclass
class ParsedArticle:
    """A story ready to store: metadata and its blocks in reading order."""

    headline: str
    byline: str = ""
    published_at: datetime | None = None
    url: str = ""
    section: str = ""
    tags: list[str] = field(default_factory=list)
    access: str = "public"
    source_id: str = ""
    blocks: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def paragraphs(self) -> list[str]:
        return [b["text"] for b in self.blocks if b["type"] == "paragraph"]

    @property
    def images(self) -> list[dict]:
        return [b for b in self.blocks if b["type"] == "image"]


# ---------------------------------------------------------------- entry points

def decode(data: bytes) -> str:
    """The text of a seed file's bytes, or InvalidArticle for binary or non-UTF-8 data."""
    if b"\x00" in data:
        raise InvalidArticle("binary content (NUL bytes), not a text article")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArticle(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def parse(text: str) -> ParsedArticle:
    """Parse seed-format text into a ParsedArticle, or raise InvalidArticle."""
    _check_text(text)
    lines = [line.strip() for line in _LINE_BREAK.split(text.removeprefix("\ufeff"))]
    meta, body = split_front_matter(lines)
    return article_from_blocks(text_blocks(body), **meta)


def article_from_blocks(blocks: list[dict], **meta) -> ParsedArticle:
    """Drop promo boxes, take closing notes out, derive a missing headline, check it is a story."""
    blocks = remove_promo_boxes(blocks)
    blocks, notes = split_notes(blocks)
    if not any(b["type"] == "paragraph" for b in blocks):
        raise InvalidArticle("no story paragraphs (empty, or only promotional text)")
    meta["headline"] = meta.get("headline") or derive_headline(blocks)
    return ParsedArticle(blocks=blocks, notes=notes, **meta)


def _check_text(text: str) -> None:
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise InvalidArticle(f"binary content (control character U+{ord(bad.group()):04X} on line {line})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArticle("not valid UTF-8 text (lone surrogate characters)") from None
    if not text.strip():
        raise InvalidArticle("empty text")


# ---------------------------------------------------------------- front matter

def split_front_matter(lines: list[str]) -> tuple[dict, list[str]]:
    """Front matter values (checked) and the body lines after it."""
    start = next((i for i, line in enumerate(lines) if line), None)
    if start is None or lines[start] != "---":
        return {}, lines
    try:
        end = lines.index("---", start + 1)
    except ValueError:
        raise InvalidArticle("front matter: no closing '---' line") from None
    raw = _front_matter_pairs(lines[start + 1:end])
    return {_field_name(k): _value(k, v) for k, v in raw.items() if v}, lines[end + 1:]


def _front_matter_pairs(lines: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in filter(None, lines):
        key, colon, value = line.partition(":")
        key = key.strip().lower()
        if not colon or not key:
            raise InvalidArticle(f"front matter: expected 'key: value', got {line[:60]!r}")
        if key not in KEYS:
            raise InvalidArticle(f"front matter: unknown key {key!r} (known: {', '.join(KEYS)})")
        if key in pairs:
            raise InvalidArticle(f"front matter: key {key!r} given twice")
        pairs[key] = value.strip()
    return pairs


def _field_name(key: str) -> str:
    return "source_id" if key == "id" else key


def _value(key: str, value: str):
    if len(value) > LIMITS.get(key, len(value)):
        raise InvalidArticle(f"front matter: {key} is longer than {LIMITS[key]} characters")
    if key == "published_at":
        return parse_published_at(value)
    if key == "tags":
        return list(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    if key == "access" and value not in ACCESS_LEVELS:
        raise InvalidArticle(f"front matter: access must be one of {', '.join(ACCESS_LEVELS)}, not {value!r}")
    return value


def parse_published_at(value: str) -> datetime:
    """An ISO date (midnight UTC) or datetime (UTC when it names no zone), aware."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), timezone.utc)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArticle(f"front matter: published_at is not an ISO date or datetime: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------- the body

def text_blocks(lines: list[str]) -> list[dict]:
    """One block per non-empty line: a photo caption after an empty line, else a paragraph."""
    blocks = []
    for i, line in enumerate(lines):
        if line:
            after_empty_line = i > 0 and not lines[i - 1]
            blocks.append(_caption_block(line) if after_empty_line else paragraph(line))
    return blocks


def _caption_block(line: str) -> dict:
    match = _CAPTION.fullmatch(line)
    if not match:
        return paragraph(line)
    return image(match["caption"], match["credit"].strip())


def paragraph(text: str) -> dict:
    """A paragraph block."""
    return {"type": "paragraph", "text": text}


def image(caption: str, credit: str) -> dict:
    """A photo caption block: the caption and its credit, without parentheses."""
    return {"type": "image", "caption": caption, "credit": credit}


def split_caption(text: str) -> tuple[str, str]:
    """`Caption. (Credit)` → ("Caption.", "Credit"); text without a credit → (text, "")."""
    match = _CAPTION.fullmatch(text.strip())
    return (match["caption"], match["credit"].strip()) if match else (text.strip(), "")


def split_notes(blocks: list[dict]) -> tuple[list[dict], list[str]]:
    """Closing note paragraphs ("… contributed to this report.") taken off the end."""
    end = len(blocks)
    while end and blocks[end - 1]["type"] == "paragraph" and _NOTE.fullmatch(blocks[end - 1]["text"]):
        end -= 1
    return blocks[:end], [b["text"] for b in blocks[end:]]


def derive_headline(blocks: list[dict]) -> str:
    """The first sentence of the first paragraph, cut at a word to HEADLINE_MAX with '…'."""
    first = next(b["text"] for b in blocks if b["type"] == "paragraph")
    return shorten(first_sentence(first), HEADLINE_MAX)


def first_sentence(text: str) -> str:
    """`text` up to its first sentence end, without a closing full stop."""
    end = _SENTENCE_END.search(text)
    sentence = text[:end.end()] if end else text
    # Headlines carry no full stop, but keep "?", "!" and an ellipsis.
    return sentence[:-1] if sentence.endswith(".") and not sentence.endswith("..") else sentence


def shorten(text: str, limit: int) -> str:
    """`text`, or its words that fit in `limit` characters followed by '…'."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1]
    head, space, _partial = cut.rpartition(" ")
    if space and head.strip() and not text[limit - 1].isspace():
        cut = head
    return (cut.rstrip(" ,;:-–—") or cut) + "…"
