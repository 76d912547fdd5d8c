"""Rendering an edition once and filling it per recipient: content, headers, MIME, caching."""
from __future__ import annotations

import email
import re
from datetime import date, datetime, timezone
from email import policy
from email.header import decode_header, make_header

import pytest

from newsletter import edition_render, editions, links
from newsletter.models import Subscriber
from tests.factories import image, make_article, paragraph

BASE = "https://news.example.org"
SETTINGS = {"base_url": BASE, "mail_from": "The Daily Edition <daily@news.example.org>",
            "list_id": None, "publication": "The Daily Edition", "secret_key": "render-secret"}
WHEN = datetime(2026, 11, 25, 6, 30, tzinfo=timezone.utc)
ZOE = {"to": "zoe@example.org", "name": "Zoë Åström",
       "unsubscribe_url": f"{BASE}/newsletter/unsubscribe/7.0123456789abcdef0123456789abcdef",
       "manage_url": f"{BASE}/newsletter/manage/7.fedcba9876543210fedcba9876543210",
       "message_id": "<e1.s7@news.example.org>"}
BOB = {"to": "bob@example.net", "name": "Bob",
       "unsubscribe_url": f"{BASE}/newsletter/unsubscribe/8.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
       "manage_url": f"{BASE}/newsletter/manage/8.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
       "message_id": "<e1.s8@news.example.org>"}


@pytest.fixture
def edition(session):
    make_article(session, slug="talks", headline="Talks end in a deal",
                 body=[paragraph("Negotiators agreed on Tuesday."), image("Delegates at the table.", "Jo Lens/Agency"),
                       paragraph("The second paragraph stays out.")])
    make_article(session, slug="rain", headline="Rain, then more rain", access="members",
                 body=[paragraph("A wet week ahead — take an umbrella."), image("Puddles.", "")])
    make_article(session, slug="xss", headline="<script>alert('x')</script> & co",
                 body=[paragraph("<b>Not bold</b> here.")])
    edition = editions.create_edition(session, day=date(2026, 11, 25), slugs=["talks", "rain", "xss"], count=8,
                                      tz="UTC", intro="Good morning from the newsroom.\n\nA busy day.")
    session.commit()
    return edition


def prepare(session, edition, **overrides):
    return edition_render.prepare(session, edition.id, **(SETTINGS | overrides))


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def parts(data: bytes) -> tuple[str, str]:
    msg = parse(data)
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


# ---------------------------------------------------------------- content

def test_every_story_is_in_both_parts(session, edition):
    text, html = parts(prepare(session, edition).message_bytes(**ZOE, date=WHEN))
    for part in (text, html):
        assert "Talks end in a deal" in part and "Rain, then more rain" in part
        assert "Negotiators agreed on Tuesday." in part
        assert "A wet week ahead — take an umbrella." in part
        assert "Delegates at the table." in part and "Jo Lens/Agency" in part
        assert "Puddles." in part
        for slug in ("talks", "rain", "xss"):
            assert f"{BASE}/articles/{slug}" in part
        assert "The second paragraph stays out." not in part
        assert "Good morning from the newsroom." in part and "A busy day." in part
    assert "Read more" in html
    assert "[For members] Rain, then more rain" in text


def test_stories_keep_their_order(session, edition):
    text, html = parts(prepare(session, edition).message_bytes(**ZOE, date=WHEN))
    for part in (text, html):
        assert part.index("Talks end") < part.index("Rain, then") < part.index("alert(")


def test_html_is_escaped_in_the_html_part(session, edition):
    _, html = parts(prepare(session, edition).message_bytes(**ZOE, date=WHEN))
    assert "<script>" not in html and "<b>Not bold</b>" not in html
    assert "&lt;script&gt;alert('x')&lt;/script&gt; &amp; co" in html
    assert "&lt;b&gt;Not bold&lt;/b&gt;" in html


def test_css_is_inlined_and_dark_mode_kept(session, edition):
    _, html = parts(prepare(session, edition).message_bytes(**ZOE, date=WHEN))
    assert re.search(r'<td class="masthead" style="[^"]*font-family', html)
    assert re.search(r'<div class="story" style="[^"]*border-top', html)
    assert "@media (prefers-color-scheme: dark)" in html
    assert ".story h2 a { color: #f4f1ea !important; }" in html


def test_no_remote_assets(session, edition):
    _, html = parts(prepare(session, edition).message_bytes(**ZOE, date=WHEN))
    assert "<link" not in html and "<img" not in html and "<script" not in html
    assert "@import" not in html and "url(" not in html


def test_the_preheader_is_hidden_preview_text(session, edition):
    editions.update_edition(session, edition, preheader="A deal, and rain")
    session.commit()
    _, html = parts(prepare(session, edition).message_bytes(**ZOE, date=WHEN))
    preheader = re.search(r'<div class="preheader" style="([^"]*)">([^<]*)</div>', html)
    assert "display: none" in preheader[1]
    assert preheader[2].startswith("A deal, and rain")
    assert html.index("A deal, and rain") < html.index('class="story"')


def test_the_audiences_differ(session, edition):
    _, public = parts(prepare(session, edition).message_bytes(**ZOE, date=WHEN))
    _, members = parts(prepare(session, edition, audience="members").message_bytes(**ZOE, date=WHEN))
    assert "Become a member" in public and "Become a member" not in members
    assert "Thank you for being a member" in members
    with pytest.raises(ValueError):
        prepare(session, edition, audience="everyone")


# ---------------------------------------------------------------- per recipient

def test_each_recipient_gets_their_own_links_and_name(session, edition):
    prepared = prepare(session, edition)
    zoe, bob = prepared.message_bytes(**ZOE, date=WHEN), prepared.message_bytes(**BOB, date=WHEN)
    for mine, theirs, data in ((ZOE, BOB, zoe), (BOB, ZOE, bob)):
        msg = parse(data)
        text, html = parts(data)
        assert msg["To"].addresses[0].display_name == mine["name"]
        assert msg["To"].addresses[0].addr_spec == mine["to"]
        assert msg["List-Unsubscribe"].startswith(f"<{mine['unsubscribe_url']}>")
        for part in (text, html):
            assert mine["unsubscribe_url"] in part and mine["manage_url"] in part
            assert f"Hello {mine['name']}," in part and mine["to"] in part
            for key in ("unsubscribe_url", "manage_url", "to", "name"):
                assert theirs[key] not in part
        assert theirs["unsubscribe_url"].encode() not in data and theirs["to"].encode() not in data
    _, html = parts(zoe)
    assert f'<a href="{ZOE["unsubscribe_url"]}"' in html and f'<a href="{ZOE["manage_url"]}"' in html


def test_values_are_escaped_where_they_land(session, edition):
    odd = ZOE | {"name": "Tom & <Jerry>", "unsubscribe_url": f"{BASE}/newsletter/unsubscribe/1.a?x=1&y=2"}
    data = prepare(session, edition).message_bytes(**odd, date=WHEN)
    text, html = parts(data)
    assert "Hello Tom & <Jerry>," in text and "Hello Tom &amp; &lt;Jerry&gt;," in html
    assert f"{BASE}/newsletter/unsubscribe/1.a?x=1&y=2" in text
    assert 'href="https://news.example.org/newsletter/unsubscribe/1.a?x=1&amp;y=2"' in html
    assert parse(data)["To"].addresses[0].display_name == "Tom & <Jerry>"


def test_without_a_name_the_greeting_is_plain(session, edition):
    text, html = parts(prepare(session, edition).message_bytes(**ZOE | {"name": ""}, date=WHEN))
    assert "Hello," in text and "Hello," in html
    assert parse(prepare(session, edition).message_bytes(**ZOE | {"name": ""}))["To"] == ZOE["to"]


def test_a_line_break_in_a_value_cannot_add_headers(session, edition):
    prepared = prepare(session, edition)
    with pytest.raises(ValueError):
        prepared.message_bytes(**ZOE | {"unsubscribe_url": f"{BASE}/x\r\nBcc: evil@example.com"})
    with pytest.raises(ValueError):
        prepared.message_bytes(**ZOE | {"message_id": "<a@b>\nBcc: evil@example.com"})
    data = prepared.message_bytes(**ZOE | {"name": "Eve\r\nBcc: evil@example.com"})
    assert parse(data)["Bcc"] is None
    assert b"\r\nBcc:" not in data


def test_long_and_non_ascii_values_keep_lines_short(session, edition):
    long_url = f"{BASE}/newsletter/unsubscribe/" + "9" * 18 + "." + "f" * 200
    name = "Åsa-Marie Öberg-Ñúñez de la Fuente y Ægirsdóttir " * 3
    data = prepare(session, edition).message_bytes(**ZOE | {"unsubscribe_url": long_url, "name": name})
    head, _, body = data.partition(b"\r\n\r\n")
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"List-Unsubscribe: <"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    msg = parse(data)
    # Python's parser puts a space between encoded words (RFC 2047 readers do not).
    assert " ".join(msg["To"].addresses[0].display_name.split()) == " ".join(name.split())
    assert str(make_header(decode_header(head.split(b"To: ")[1].split(b" <")[0].decode()))) == " ".join(name.split())
    assert long_url in parts(data)[0] and long_url in parts(data)[1]


def test_message_for_a_subscriber_uses_their_signed_links(session, edition):
    subscriber = Subscriber(email="ana@example.org", email_hash="0" * 64, state="confirmed",
                            token_key="k" * 32, name="Ana")
    session.add(subscriber)
    session.flush()
    data = prepare(session, edition).message_for(subscriber, message_id="<e1.s1@news.example.org>")
    text, _ = parts(data)
    assert links.unsubscribe_url(BASE, subscriber, SETTINGS["secret_key"]) in text
    assert links.manage_url(BASE, subscriber, SETTINGS["secret_key"]) in text
    assert "Hello Ana," in text


# ---------------------------------------------------------------- headers and MIME

def test_the_message_has_every_header_and_both_parts(session, edition):
    data = prepare(session, edition, reply_to="Newsroom <letters@news.example.org>").message_bytes(**ZOE, date=WHEN)
    msg = parse(data)
    assert msg["From"] == "The Daily Edition <daily@news.example.org>"
    assert msg["Reply-To"] == "Newsroom <letters@news.example.org>"
    assert msg["Subject"] == "The Daily Edition — 25 November 2026: Talks end in a deal"
    assert b"Subject: The Daily Edition =?utf-8?" in data  # RFC 2047: the dash is not ASCII
    assert msg["Date"].datetime == WHEN
    assert msg["Message-ID"] == "<e1.s7@news.example.org>"
    assert msg["List-Id"] == "<daily-edition.news.example.org>"
    assert msg["List-Unsubscribe"] == (f"<{ZOE['unsubscribe_url']}>, "
                                       "<mailto:daily@news.example.org?subject=unsubscribe>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    for part in msg.iter_parts():
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert not part.defects
    assert not msg.defects
    assert data.isascii()


def test_a_configured_list_id_and_unsubscribe_address(session, edition):
    prepared = prepare(session, edition, list_id="<daily.lists.example.org>",
                       unsubscribe_mailto="unsubscribe@lists.example.org")
    msg = parse(prepared.message_bytes(**ZOE))
    assert msg["List-Id"] == "<daily.lists.example.org>"
    assert msg["List-Unsubscribe"].endswith("<mailto:unsubscribe@lists.example.org?subject=unsubscribe>")
    assert msg["Reply-To"] is None


def test_message_ids_get_angle_brackets(session, edition):
    msg = parse(prepare(session, edition).message_bytes(**ZOE | {"message_id": "e1.s7@news.example.org"}))
    assert msg["Message-ID"] == "<e1.s7@news.example.org>"


def test_an_international_domain_is_sent_in_punycode(session, edition):
    msg = parse(prepare(session, edition).message_bytes(**ZOE | {"to": "zoe@bücher.example"}))
    assert msg["To"].addresses[0].addr_spec == "zoe@xn--bcher-kva.example"


def test_a_test_sends_subject(session, edition):
    prepared = prepare(session, edition)
    data = edition_render.sample_message(prepared, to="desk@example.org", message_id="<t@x>", test=True)
    msg = parse(data)
    assert msg["Subject"] == f"[TEST] {prepared.subject}"
    assert "/newsletter/unsubscribe/sample" in msg["List-Unsubscribe"]
    assert parse(prepared.message_bytes(**ZOE))["Subject"] == prepared.subject


# ---------------------------------------------------------------- once per version

def test_rendered_once_per_version(session, edition):
    cache = edition_render.prepared_cache
    before = cache.renders
    first = prepare(session, edition)
    assert prepare(session, edition) is first
    assert cache.renders == before + 1
    for _ in range(50):
        first.message_bytes(**ZOE)
    assert cache.renders == before + 1
    editions.update_edition(session, edition, subject="A new subject")
    session.commit()
    second = prepare(session, edition)
    assert (second.version, second.subject, cache.renders) == (2, "A new subject", before + 2)
    prepare(session, edition, audience="members")
    assert cache.renders == before + 3
    assert prepare(session, edition) is second


def test_a_pulled_story_is_gone_from_the_next_prepare(session, edition):
    edition.state = "sending"
    session.commit()
    assert "Rain, then more rain" in parts(prepare(session, edition).message_bytes(**ZOE))[0]
    editions.pull_article(session, edition, "rain")
    session.commit()
    prepared = prepare(session, edition)
    assert prepared.version == 2
    assert "Rain, then more rain" not in parts(prepared.message_bytes(**ZOE))[0]


def test_a_correction_is_picked_up(session, app, edition):
    from newsletter import articles, db

    assert "Negotiators agreed on Tuesday." in parts(prepare(session, edition).message_bytes(**ZOE))[0]
    with app.app_context():  # the newsroom corrects the story elsewhere
        other = db.session()
        story = articles.get(other, "talks")
        story.body = [paragraph("Negotiators agreed on Wednesday.")] + story.body[1:]
        editions.note_correction(other, story)
        other.commit()
    prepared = prepare(session, edition)
    text, html = parts(prepared.message_bytes(**ZOE))
    assert prepared.version == 2
    assert "Negotiators agreed on Wednesday." in text and "Negotiators agreed on Wednesday." in html


def test_the_cache_is_bounded(session, edition):
    cache = edition_render.PreparedCache(2)
    for n in range(5):
        cache.get(("key", n), lambda: object())
    assert cache.renders == 5 and len(cache._items) == 2


def test_an_unknown_edition(session):
    with pytest.raises(editions.EditionNotFound):
        edition_render.prepare(session, 12345, **SETTINGS)
