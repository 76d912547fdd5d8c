"""The front page and the article page, through the test client on a real database."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from tests.factories import image, make_article, paragraph
from tests.web.markup import parse

BODY = [
    paragraph("First paragraph."),
    paragraph("Second paragraph."),
    paragraph("Third paragraph."),
    image("Soldiers on Mount Hermon, August 12, 2025.", "Ayal Margolin/Flash90"),
    paragraph("Fourth paragraph."),
    paragraph("Fifth paragraph."),
    paragraph("Sixth paragraph."),
    paragraph("Seventh paragraph."),
    image("A parade in downtown Damascus.", "AP Photo/Leo Correa"),
    paragraph("Eighth paragraph."),
]


@pytest.fixture
def story(session):
    article = make_article(session, slug="syria-talks", headline="Syria wants a deal",
                           byline="Jane Doe", section="Middle East", body=BODY,
                           notes=["Agencies contributed to this report."])
    session.commit()
    return article


def article_page(client, slug="syria-talks"):
    response = client.get(f"/articles/{slug}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return parse(response.data)


def body_sequence(page) -> list[str]:
    """The article body's parts in order: paragraphs, figures and inserted boxes."""
    parts = []
    for node in page.find("div", class_="article__body").elements:
        if node.tag == "p":
            parts.append(node.text())
        elif node.tag == "figure":
            parts.append("figure: " + node.find("figcaption").text())
        elif "newsletter-box" in node.classes:
            parts.append("[newsletter box]")
        elif "ad-slot" in node.classes:
            parts.append(f"[ad {node.attrs['data-slot']}]")
    return parts


# ---------------------------------------------------------------- front page

def test_front_page_lists_latest_stories_newest_first(client, session):
    make_article(session, headline="Older story", published_at=datetime(2025, 1, 1, tzinfo=timezone.utc))
    make_article(session, headline="Newest story", section="Politics", byline="Ann Writer",
                 body=[paragraph("What happened today."), paragraph("More.")],
                 published_at=datetime(2025, 3, 1, 8, 30, tzinfo=timezone.utc))
    make_article(session, headline="Middle story", published_at=datetime(2025, 2, 1, tzinfo=timezone.utc))
    session.commit()

    page = parse(client.get("/").data)

    headlines = [a.text() for a in page.find_all("a") if a.attrs.get("href", "").startswith("/articles/")]
    assert headlines == ["Newest story", "Middle story", "Older story"]
    lead = page.find("article", class_="story--lead")
    assert lead.find("p", class_="story__standfirst").text() == "What happened today."
    assert lead.find("p", class_="kicker").text() == "Politics"
    assert "Ann Writer" in lead.find("p", class_="story-meta").text()
    assert lead.find("time").attrs["datetime"] == "2025-03-01T08:30:00+00:00"
    assert lead.find("time").text() == "March 1, 2025"


def test_front_page_has_the_daily_edition_box(client, session):
    make_article(session)
    session.commit()

    page = parse(client.get("/").data)

    form = page.find("section", class_="newsletter-box").find("form")
    assert form.attrs["method"] == "post" and form.attrs["action"] == "/newsletter/signup"
    email = form.find("input", name="email")
    assert email.attrs["type"] == "email" and "required" in email.attrs
    consent = form.find("input", name="consent")
    assert consent.attrs["type"] == "checkbox" and "required" in consent.attrs
    consent_label = form.find("label", for_=consent.attrs["id"])
    assert consent_label.find("a").attrs["href"] == "/terms"
    honeypot = form.find("div", class_="hp")
    assert honeypot.attrs["aria-hidden"] == "true"
    assert honeypot.find("input", name="website").attrs["tabindex"] == "-1"


@pytest.mark.parametrize("path", ["/", "/articles/syria-talks"])
def test_pages_every_reader_shares_are_cacheable(client, story, path):
    response = client.get(path)

    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert "Set-Cookie" not in response.headers  # no session, no reader id
    assert "Cookie" not in response.headers.get("Vary", "")  # one copy serves every anonymous reader
    field = parse(response.data).find("section", class_="newsletter-box").find("input", name="csrf_token")
    assert field.attrs["value"] == "" and "data-csrf" in field.attrs  # csrf.js fetches it when sent


@pytest.mark.parametrize("path", ["/articles/story%00", "/api/v1/articles/story%00", "/api/v1/prompt?article=%00"])
def test_a_nul_in_a_slug_is_a_404(client, session, path):
    assert client.get(path).status_code == 404


def test_the_csrf_token_route_is_never_cached_and_sets_the_session(client):
    response = client.get("/api/v1/csrf")

    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.get_json()["csrf_token"]
    assert "session=" in response.headers["Set-Cookie"]
    assert "Access-Control-Allow-Origin" not in response.headers


def test_front_page_empty_state(client):
    response = client.get("/")

    assert response.status_code == 200
    page = parse(response.data)
    assert page.find("div", class_="empty-state").find("h2").text() == "No stories yet"
    assert page.find_all("section", class_="newsletter-box")


def test_terms_page_is_linked_and_exists(client):
    page = parse(client.get("/terms").data)

    assert page.find("h1").text() == "Daily Edition newsletter terms"


# ---------------------------------------------------------------- article page

def test_article_page_header(client, story):
    page = article_page(client)

    assert [h.text() for h in page.find_all("h1")] == ["Syria wants a deal"]
    meta = page.find("header", class_="article__header").find("p", class_="story-meta")
    assert "Jane Doe" in meta.text()
    assert meta.find("time").attrs["datetime"] == story.published_at.isoformat()
    assert page.find("title").text() == "Syria wants a deal | The Daily Edition"


def test_article_page_shows_text_figures_and_boxes_in_reading_order(client, story):
    page = article_page(client)

    assert body_sequence(page) == [
        "First paragraph.", "Second paragraph.", "Third paragraph.",
        "[newsletter box]",
        "figure: Soldiers on Mount Hermon, August 12, 2025. Photo credit: Ayal Margolin/Flash90",
        "Fourth paragraph.", "Fifth paragraph.", "Sixth paragraph.",
        "[ad article-middle]",
        "Seventh paragraph.",
        "figure: A parade in downtown Damascus. Photo credit: AP Photo/Leo Correa",
        "Eighth paragraph.",
    ]


def test_photo_placeholder_is_hidden_and_the_caption_names_the_figure(client, story):
    figure = article_page(client).find_all("figure")[0]

    assert figure.find("div", class_="photo__frame").attrs["aria-hidden"] == "true"
    credit = figure.find("span", class_="photo__credit")
    assert credit.text() == "Photo credit: Ayal Margolin/Flash90"


def test_article_page_ends_with_notes_ad_and_the_prompt_slot(client, story):
    page = article_page(client)
    main = page.find("main")

    notes = page.find("footer", class_="article__notes")
    assert notes.text() == "Agencies contributed to this report."
    assert [n.tag for n in main.elements][-2:] == ["aside", "div"]
    end_ad = main.elements[-2]
    assert end_ad.attrs["data-slot"] == "article-end"
    assert end_ad.find("p", class_="ad-slot__label").text() == "Advertisement"
    assert end_ad.attrs["aria-labelledby"] == "ad-article-end-label"
    # The appeal itself comes per reader from GET /api/v1/prompt (tests/web/test_prompt_api.py).
    slot = main.elements[-1]
    assert slot.attrs["data-prompt-src"] == "/api/v1/prompt?article=syria-talks"


def test_short_article_gets_the_box_after_its_last_paragraph_and_one_ad(client, session):
    make_article(session, slug="brief", body=[paragraph("Only one."), image("A view.", "Me")])
    session.commit()

    page = article_page(client, "brief")

    assert body_sequence(page) == ["Only one.", "[newsletter box]", "figure: A view. Photo credit: Me"]
    assert [a.attrs["data-slot"] for a in page.find_all("aside", class_="ad-slot")] == ["article-end"]


def test_article_without_paragraphs_still_renders(client, session):
    make_article(session, slug="empty", body=[], notes=[])
    session.commit()

    page = article_page(client, "empty")

    assert body_sequence(page) == ["[newsletter box]"]
    assert not page.find_all("footer", class_="article__notes")


def test_article_page_metadata(client, story):
    page = article_page(client)

    canonical = "http://newsletter.test/articles/syria-talks"
    assert page.find("link", rel="canonical").attrs["href"] == canonical
    assert page.find("meta", property="og:title").attrs["content"] == "Syria wants a deal"
    assert page.find("meta", property="og:url").attrs["content"] == canonical
    ld = json.loads(page.find("script", type="application/ld+json").text())
    assert ld["@type"] == "NewsArticle"
    assert ld["headline"] == "Syria wants a deal"
    assert ld["datePublished"] == story.published_at.isoformat()
    assert ld["author"] == [{"@type": "Person", "name": "Jane Doe"}]
    assert ld["mainEntityOfPage"] == canonical
    assert ld["isAccessibleForFree"] is True


# ---------------------------------------------------------------- escaping

HOSTILE = '<script>alert("x")</script><b onmouseover=1>'


def test_every_story_value_is_escaped(client, session):
    make_article(session, slug="hostile", headline=HOSTILE, byline=HOSTILE, section=HOSTILE,
                 body=[paragraph(HOSTILE), image(HOSTILE, HOSTILE)], notes=[HOSTILE])
    session.commit()

    html = client.get("/articles/hostile").get_data(as_text=True)
    front = client.get("/").get_data(as_text=True)

    for page in (html, front):
        assert "<script>alert" not in page
        assert "<b onmouseover" not in page
    assert html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 6
    parsed = parse(html)
    assert parsed.find("h1").text() == HOSTILE
    scripts = parsed.find_all("script")
    assert [s.attrs.get("type") for s in scripts] == ["application/ld+json", None, None]
    # our own, the only others
    assert [s.attrs["src"].split("?v=")[0] for s in scripts[1:]] == ["/assets/prompt.js", "/assets/csrf.js"]


def test_json_ld_cannot_be_closed_by_the_text(client, session):
    make_article(session, slug="breakout", headline="</script><script>alert(1)</script>")
    session.commit()

    page = parse(client.get("/articles/breakout").data)

    (ld,) = [s for s in page.find_all("script") if s.attrs.get("type") == "application/ld+json"]
    assert json.loads(ld.text())["headline"] == "</script><script>alert(1)</script>"


# ---------------------------------------------------------------- accessibility basics

@pytest.mark.parametrize("path", ["/", "/articles/syria-talks", "/terms", "/articles/missing"])
def test_accessibility_basics(client, story, path):
    page = parse(client.get(path).data)

    assert page.find("html").attrs.get("lang") == "en"
    assert len(page.find_all("h1")) == 1
    main = page.find("main")
    assert main.attrs["id"] == "main"
    assert page.find("a", class_="skip-link").attrs["href"] == "#main"
    assert page.find_all("header") and page.find_all("nav") and page.find_all("footer")
    assert page.find("meta", name="viewport")
    labelled = {label.attrs.get("for") for label in page.find_all("label")}
    for field in page.find_all("input"):
        if field.attrs.get("type") != "hidden":
            assert field.attrs.get("id") in labelled, field.attrs


def test_ids_are_unique(client, story):
    page = parse(client.get("/articles/syria-talks").data)

    ids = [n.attrs["id"] for n in page.iter() if "id" in n.attrs]
    assert len(ids) == len(set(ids))
