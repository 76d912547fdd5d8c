"""Promotional boxes copied in with a story's text, and taking them out.

PROMO_BOXES is the table. A box begins at a paragraph that its `start` pattern matches
as a whole, wherever it stands, and ends in one of two ways:

- `follow`: a fixed set of lines. The paragraphs right after the start that each match
  one of `follow`, at most `size` of them (the sign-up box's tagline, terms, button).
- `signed`: a reader-revenue appeal. It runs through its signature, a sign-off such as
  "Thank you," and the name under it, when one comes within REACH paragraphs; without
  one, as far as the paragraphs keep appealing (APPEAL_WORDS), often the end of the text.

Every pattern must match a whole paragraph, case-insensitively, and most are short, so
a story paragraph that merely mentions a newsletter or a membership stays.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


def _whole(*alternatives: str) -> re.Pattern:
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.IGNORECASE)


REACH = 10          # paragraphs an appeal may run before its signature
NAME_MAX = 120      # a signature's name line is short; a longer line is story again

TERMS = r"by (?:signing up|subscribing|registering|clicking .{1,30}),? you (?:agree|accept)\b.{0,120}"
# What the lines of a sign-up box say besides their heading.
SIGN_UP_LINES = _whole(
    TERMS,
    r"(?:and )?by e-?mail\b.{0,80}",
    r"(?:and )?never miss (?:our|the|a) .{0,60}",
    r"(?:enter |type )?your e-?mail(?: address)?\b.{0,40}",
    r"(?:sign ?up|subscribe|submit|join|get it)(?: now| today| free| for free)?[.!]?",
    r".{0,30}\b(?:unsubscribe|opt out) (?:at )?any ?time\b.{0,30}",
)
APPEAL_WORDS = re.compile(
    r"\b(?:journalism|reporting|newsroom|support(?:ers?)?|members?(?:hip)?|community|"
    r"donat\w*|subscri\w*|ad-free|contribut\w*|partners?)\b", re.IGNORECASE)
SIGN_OFF = _whole(r"(?:thank you|thanks|many thanks|with (?:thanks|gratitude)|sincerely|"
                  r"best(?: regards| wishes)?|warm(?:ly| regards)|yours(?: truly)?)[,.!]?")


@dataclass(frozen=True)
class PromoBox:
    """One kind of box: how its first paragraph reads and how it ends (see above)."""

    name: str
    start: re.Pattern
    follow: re.Pattern | None = None
    size: int = 0
    signed: bool = False


PROMO_BOXES = (
    # "Get The Times of Israel's Daily Edition" / "by email and never miss…" / "By signing up…"
    PromoBox("newsletter heading", _whole(
        r"get (?:the |our )?.{0,60}?(?:daily edition|newsletters?|briefing|digest)"
        r"(?: by e-?mail| in your inbox| for free| free)?[.!]?"),
        follow=SIGN_UP_LINES, size=4),
    # "Sign up for our newsletter", "Subscribe to The Daily Edition", "Subscribe to …"
    PromoBox("newsletter sign-up", _whole(
        r"(?:sign ?up|register) (?:for|to) .{0,60}?(?:newsletters?|daily edition|briefing|"
        r"digest|updates|e-?mails?|alerts)\b.{0,60}",
        r"subscribe to (?:our|the|this) [^,;]{1,80}"),
        follow=SIGN_UP_LINES, size=4),
    # A terms line left alone: "By signing up, you agree to the terms"
    PromoBox("terms", _whole(TERMS), follow=SIGN_UP_LINES, size=3),
    # "You appreciate our journalism" … "please consider joining …" … "Thank you," / name
    PromoBox("membership appeal", _whole(
        r"you (?:appreciate|value|rely on) our (?:journalism|reporting|work)[.!]?",
        r"(?:please )?(?:support|fund|help (?:fund|sustain|support)) (?:our|independent|quality)"
        r" (?:journalism|reporting|newsroom|work)\b.{0,60}",
        r".{0,60}\bplease consider (?:joining|supporting|becoming|donating|contributing|"
        r"subscribing)\b(?=.*" + APPEAL_WORDS.pattern + r").*",
        r"become a (?:member|supporter|subscriber|patron)\b.{0,120}",
        r"join (?:us|our .{0,60}?\b(?:community|members|membership|supporters))\b.{0,80}",
        r"join the .{0,60} community[.!]?"),
        signed=True),
)


def remove_promo_boxes(blocks: list[dict]) -> list[dict]:
    """`blocks` without the promotional boxes of PROMO_BOXES."""
    kept, i = [], 0
    while i < len(blocks):
        box = box_at(blocks, i)
        if box is None:
            kept.append(blocks[i])
            i += 1
        else:
            i = _signed_end(blocks, i) if box.signed else _follow_end(box, blocks, i)
    return kept


def box_at(blocks: list[dict], i: int) -> PromoBox | None:
    """The box that begins at paragraph `i`, if one does."""
    text = _text(blocks[i])
    return next((box for box in PROMO_BOXES if box.start.fullmatch(text)), None)


def _text(block: dict) -> str:
    # Photo captions never begin or continue a box; only a signed box's span takes them.
    return block["text"] if block["type"] == "paragraph" else ""


def _follow_end(box: PromoBox, blocks: list[dict], i: int) -> int:
    end = i + 1
    while end < len(blocks) and end - i <= box.size and box.follow.fullmatch(_text(blocks[end])):
        end += 1
    return end


def _signed_end(blocks: list[dict], i: int) -> int:
    for j in range(i + 1, min(i + 1 + REACH, len(blocks))):
        if SIGN_OFF.fullmatch(_text(blocks[j])):
            has_name = j + 1 < len(blocks) and 0 < len(_text(blocks[j + 1])) <= NAME_MAX
            return j + 2 if has_name else j + 1
    end = i + 1
    while end < len(blocks) and APPEAL_WORDS.search(_text(blocks[end])):
        end += 1
    return end
