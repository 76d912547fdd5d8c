"""The seed-format parser: the sample story, the rules one by one, bad inputs, fuzzing."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter import seedformat
from newsletter.seedformat import InvalidArticle, parse
from tests.conftest import SEED_DIR

SAMPLE = SEED_DIR / "000_53c50bb64dfc6dfa.txt"

SIGN_UP_BOX = [
    "Get The Times of Israel’s Daily Edition",
    "by email and never miss our top stories",
    "By signing up, you agree to the terms",
]
APPEAL = [
    "You appreciate our journalism",
    "You clearly find our careful reporting valuable, in a time when facts are often distorted"
    " and news coverage often lacks context.",
    "Your support is essential to continue our work. We want to continue delivering the"
    " professional journalism you value, even as the demands on our newsroom have grown"
    " dramatically since October 7.",
    "So today, please consider joining our reader support group, The Times of Israel"
    " Community. For as little as $6 a month you’ll become our partners while enjoying The"
    " Times of Israel AD-FREE, as well as accessing exclusive content available only to Times"
    " of Israel Community members.",
    "Thank you,",
    "David Horovitz, Founding Editor of The Times of Israel",
]
CAPTIONS = [
    ("Israeli soldiers operate on the Syrian side of Mount Hermon, August 12, 2025.",
     "Ayal Margolin/Flash90"),
    ("In this photo released by the Syrian Presidency press office, President Donald Trump,"
     " right, speaks with Syria’s President Ahmad al-Sharaa, at the White House in Washington,"
     " Monday, Nov. 10, 2025.", "Syrian Presidency press office via AP"),
    ("Members of Syria’s new armed forces, comprising former rebels who overthrew the Assad’s"
     " regime, march during a military parade in downtown Damascus, Syria, December 27, 2024.",
     "AP Photo/Leo Correa"),
    ("Bullet holes deface a mural depicting the toppled Syrian president Bashar al-Assad in Adra"
     " town on the northeastern outskirts of Damascus, Syria, December 25, 2024.",
     "Sameer Al-Doumy / AFP"),
]
STORY = ["First paragraph of the story.", "Second paragraph, with more.",
         "Third paragraph.", "Fourth and last paragraph."]


def story(*lines: str) -> str:
    return "\n".join(lines)


def all_text(article) -> str:
    parts = [article.headline, *article.notes]
    for block in article.blocks:
        parts.extend(v for k, v in block.items() if k != "type")
    return "\n".join(parts)


# ---------------------------------------------------------------- the sample story

@pytest.fixture(scope="module")
def sample():
    return parse(SAMPLE.read_text(encoding="utf-8"))


def test_sample_metadata(sample):
    assert sample.headline == "Sharaa says Trump backs full Israeli withdrawal from Syria"
    assert sample.byline
    assert sample.section == "Middle East"
    assert sample.published_at == datetime(2025, 11, 11, tzinfo=timezone.utc)


def test_sample_keeps_every_story_paragraph(sample):
    assert len(sample.paragraphs) == 24
    assert sample.paragraphs[0].startswith("Syria’s leader Ahmed al-Sharaa said Monday")
    assert sample.paragraphs[-1].startswith("“We need Russia because it’s a permanent member")
    assert "“Israel has always claimed" in sample.paragraphs[5]


def test_sample_captions_stand_where_they_stood(sample):
    kinds = [b["type"] for b in sample.blocks]
    assert [i for i, kind in enumerate(kinds) if kind == "image"] == [6, 13, 18, 23]
    assert [(b["caption"], b["credit"]) for b in sample.images] == CAPTIONS
    assert sample.blocks[5]["text"].startswith("“Israel has always claimed")
    assert sample.blocks[7]["text"].startswith("Sharaa also said an Israeli demand")


def test_sample_note(sample):
    assert sample.notes == ["Agencies contributed to this report."]
    assert "Agencies contributed to this report." not in sample.paragraphs


@pytest.mark.parametrize("line", SIGN_UP_BOX + APPEAL)
def test_sample_has_no_promo_text(sample, line):
    assert line in SAMPLE.read_text(encoding="utf-8")
    assert line not in all_text(sample)


def test_sample_without_front_matter(sample):
    text = SAMPLE.read_text(encoding="utf-8")
    bare = parse(text[text.index("\n---\n") + 5:])
    assert bare.blocks == sample.blocks and bare.notes == sample.notes
    assert bare.headline.startswith("Syria’s leader Ahmed al-Sharaa said Monday that US")
    assert len(bare.headline) <= 100 and bare.headline.endswith("…")


# ---------------------------------------------------------------- front matter

def test_front_matter_fields():
    text = story("---", "headline: A headline: with a colon", "byline: Jo Writer",
                 "published_at: 2025-11-11T08:30:00+02:00", "url: https://example.test/a",
                 "section: Local", "tags: one, two ,, one", "access: members", "id: story-1",
                 "---", *STORY)
    article = parse(text)
    assert article.headline == "A headline: with a colon"
    assert (article.byline, article.section, article.access) == ("Jo Writer", "Local", "members")
    assert article.published_at == datetime(2025, 11, 11, 6, 30, tzinfo=timezone.utc)
    assert (article.url, article.source_id, article.tags) == ("https://example.test/a", "story-1", ["one", "two"])
    assert article.paragraphs == STORY


@pytest.mark.parametrize("value, expected", [
    ("2025-11-11", datetime(2025, 11, 11, tzinfo=timezone.utc)),
    ("2025-11-11 10:00", datetime(2025, 11, 11, 10, tzinfo=timezone.utc)),
    ("2025-11-11T10:00:00Z", datetime(2025, 11, 11, 10, tzinfo=timezone.utc)),
    ("2025-11-11T10:00:00-05:00", datetime(2025, 11, 11, 15, tzinfo=timezone.utc)),
])
def test_published_at_forms(value, expected):
    published = parse(story("---", f"published_at: {value}", "---", *STORY)).published_at
    assert published == expected and published.tzinfo is not None


def test_front_matter_is_optional_and_defaults():
    article = parse(story(*STORY))
    assert (article.byline, article.url, article.section, article.tags) == ("", "", "", [])
    assert article.access == "public" and article.published_at is None


@pytest.mark.parametrize("front, word", [
    ("published_at: yesterday", "published_at"),
    ("published_at: 2025-13-45", "published_at"),
    ("access: everyone", "access"),
    ("headline: " + "x" * 301, "headline"),
    ("colour: blue", "colour"),
    ("just a line", "key: value"),
    ("byline: a\nbyline: b", "byline"),
])
def test_bad_front_matter_names_the_key(front, word):
    with pytest.raises(InvalidArticle, match=word) as caught:
        parse(story("---", front, "---", *STORY))
    assert "\n" not in str(caught.value)


def test_unclosed_front_matter():
    with pytest.raises(InvalidArticle, match="closing"):
        parse(story("---", "headline: x", *STORY))


# ---------------------------------------------------------------- body rules

def test_text_without_captions_is_all_paragraphs():
    article = parse(story(*STORY))
    assert article.paragraphs == STORY and article.images == [] and article.notes == []


def test_caption_needs_an_empty_line_before_it():
    line = "The minister, left, at the meeting. (AP Photo/Jane Doe)"
    article = parse(story(STORY[0], line, "", line, STORY[1]))
    assert article.blocks == [
        {"type": "paragraph", "text": STORY[0]},
        {"type": "paragraph", "text": line},
        {"type": "image", "caption": "The minister, left, at the meeting.", "credit": "AP Photo/Jane Doe"},
        {"type": "paragraph", "text": STORY[1]},
    ]


def test_line_after_empty_line_without_credit_is_a_paragraph():
    article = parse(story(STORY[0], "", STORY[1], "", "A line ending in empty parens ()"))
    assert article.paragraphs == [STORY[0], STORY[1], "A line ending in empty parens ()"]


def test_unicode_quotes_and_html_like_text_are_kept_verbatim():
    lines = ["“Quoted,” she said — it’s ‘fine’ «really».",
             "<script>alert(1)</script> & <b>bold</b> &amp; text",
             "Emoji 🎉 and RTL שלום stay."]
    article = parse(story(*lines))
    assert article.paragraphs == lines
    assert article.headline == "“Quoted,” she said — it’s ‘fine’ «really»"


def test_windows_line_endings_and_bom():
    article = parse("\ufeff" + "\r\n".join(STORY) + "\r\n")
    assert article.paragraphs == STORY


@pytest.mark.parametrize("closing", [
    ["Agencies contributed to this report."],
    ["Jane Doe contributed to this report."],
    ["Reporting by Jane Doe; Editing by John Roe"],
    ["This story has been updated to add the minister’s comments.", "AP contributed to this report."],
])
def test_closing_notes(closing):
    article = parse(story(*STORY, *closing))
    assert article.paragraphs == STORY and article.notes == closing


def test_note_like_line_mid_text_stays_a_paragraph():
    line = "Agencies contributed to this report."
    article = parse(story(STORY[0], line, STORY[1]))
    assert article.paragraphs == [STORY[0], line, STORY[1]] and article.notes == []


# ---------------------------------------------------------------- promo boxes elsewhere

def test_sign_up_box_at_the_top():
    article = parse(story(*SIGN_UP_BOX, *STORY))
    assert article.paragraphs == STORY
    assert article.headline == "First paragraph of the story"


def test_appeal_mid_text_ends_at_its_signature():
    article = parse(story(STORY[0], STORY[1], *APPEAL, STORY[2], STORY[3]))
    assert article.paragraphs == STORY


def test_appeal_after_front_matter_and_empty_lines():
    article = parse(story("---", "headline: H", "---", "", *APPEAL, "", *STORY))
    assert article.paragraphs == STORY


@pytest.mark.parametrize("box", [
    ["Sign up for our newsletter", "Enter your email address", "Sign up",
     "By signing up, you agree to the terms and privacy policy"],
    ["Subscribe to The Daily Edition", "Never miss our top stories"],
    ["Sign up for our free weekly newsletter to get the best of the week"],
    ["By subscribing, you agree to our Terms of Use"],
    ["Get our newsletter in your inbox", "Unsubscribe at any time."],
    ["Support our journalism", "Please consider becoming a member: it takes a minute.",
     "Members read ad-free."],
    ["Become a member today and read ad-free."],
    ["Join our community of supporters", "Thanks,", "The editors"],
    ["Join The Times of Israel Community", "For as little as $6 a month you become a partner."],
    ["Please consider supporting our independent journalism with a donation."],
])
def test_generic_promo_boxes_go(box):
    article = parse(story(STORY[0], STORY[1], *box, STORY[2], STORY[3]))
    assert article.paragraphs == STORY


@pytest.mark.parametrize("paragraph", [
    "The ministry said it would send a newsletter to residents explaining the new rules.",
    "Subscribers to the newsletter, which has 40,000 readers, were told on Monday.",
    "She urged readers to sign up for the newsletter, which launched last year.",
    "He went on to become a member of parliament in 2019.",
    "“Please consider supporting the ceasefire,” the minister told reporters.",
    "The union asked members to support the strike, and thanked the community.",
    "Thank you, the president said, before leaving the stage.",
    "Join the community meeting on Tuesday at 7 pm, organizers said.",
    "Get the kids to school early on Monday, the city told parents in its newsletter.",
])
def test_story_paragraphs_that_mention_newsletters_stay(paragraph):
    article = parse(story(STORY[0], paragraph, STORY[1]))
    assert article.paragraphs == [STORY[0], paragraph, STORY[1]]


# ---------------------------------------------------------------- derived headline

@pytest.mark.parametrize("first, headline", [
    ("Short first sentence. And a second one.", "Short first sentence"),
    ("Is this a question? Yes.", "Is this a question?"),
    ("Mr. Smith met Dr. Jones in the U.S. capital. Then left.", "Mr. Smith met Dr. Jones in the U.S. capital"),
    ("“We will win.” he said. More.", "“We will win.”"),
    ("No full stop at all", "No full stop at all"),
])
def test_derived_headline_is_the_first_sentence(first, headline):
    assert parse(story(first, STORY[1])).headline == headline


def test_long_derived_headline_is_cut_at_a_word():
    first = "Word " * 40 + "end."
    headline = parse(first).headline
    assert len(headline) <= 100 and headline.endswith("Word…")


def test_derived_headline_skips_leading_captions():
    text = story("", "A photo. (AP)", "The story starts here. More.")
    assert parse(text).headline == "The story starts here"


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("  \n\n \t \n", "empty"),
    ("---\nheadline: only a headline\n---\n", "no story paragraphs"),
    (story(*SIGN_UP_BOX), "no story paragraphs"),
    ("\n" + "A photo. (AP)\n", "no story paragraphs"),
    ("text\x00with NUL", "binary"),
    ("text with \x1b escape", "binary"),
    ("lone \ud800 surrogate", "UTF-8"),
])
def test_unusable_text_raises_invalid_article(text, message):
    with pytest.raises(InvalidArticle, match=message) as caught:
        parse(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("data, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (b"caf\xe9 au lait", "UTF-8"),
    (b"\xff\xfe", "UTF-8"),
])
def test_decode_refuses_binary_and_invalid_utf8(data, message):
    with pytest.raises(InvalidArticle, match=message):
        seedformat.decode(data)


def test_decode_drops_a_bom():
    assert seedformat.decode("\ufeffStory.".encode()) == "Story."


# ---------------------------------------------------------------- fuzzing

LINE = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=80).filter(
    lambda s: s.strip())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_parses_or_raises_invalid_article(text):
    try:
        parse(text)
    except InvalidArticle:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_invalid_article(data):
    try:
        parse(seedformat.decode(data))
    except InvalidArticle:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=12))
def test_story_lines_are_never_lost(lines):
    article = parse(story("The story begins.", *lines))
    assert article.paragraphs + article.notes == ["The story begins.", *(line.strip() for line in lines)]


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=12))
def test_lines_after_empty_lines_are_paragraphs_or_captions(lines):
    article = parse("\n\n".join(["The story begins.", *lines]))
    for line, block in zip(lines, article.blocks[1:], strict=True):
        text = block.get("text") or f"{block['caption']} ({block['credit']})"
        assert "".join(text.split()) == "".join(line.split())
