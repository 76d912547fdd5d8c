"""Every route that takes a string, sent a NUL in it (PostgreSQL refuses NUL in text: a query
or an INSERT holding one is a DataError), a NUL inside an otherwise valid value, and 10 000
characters: never a 5xx, a clear 4xx (JSON under /api/, a page elsewhere) or the normal
answer; and what a request queued, a worker can do. Run it on PostgreSQL too
(NEWSLETTER_TEST_DATABASE_URL): SQLite takes NUL and hides these.

One case per route and place; the Stripe webhook is left out (its body is signed)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Callable
from urllib.parse import quote

import pytest
from itsdangerous import URLSafeTimedSerializer

from newsletter import db, editions, member_mails, member_signin, memberships
from newsletter.models import utcnow
from newsletter.web import member_session
from tests.conftest import stripe_settings
from tests.factories import make_article
from tests.support.console import PASSWORD, bearer, make_operator, sign_in
from tests.web.signups import (SECRET_KEY, close_connections, link_token, make_confirmation_token,  # noqa: F401
                               make_subscriber, run_queued)

MESSAGE_ID = "20240101T000000000000Z-0000abcd"
READER_ID = "0123456789abcdef0123456789abcdef"
OCTAL_NUL = "\\000"


@pytest.fixture
def app_config(app_config, tmp_path):
    # The sweep reaches validation, not the CSRF check or the rate limits (tested apart);
    # the mail catcher is on so that its pages answer.
    return app_config | {"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "MAIL_CATCHER": 1,
                         "MAIL_CATCHER_DIR": str(tmp_path / "caught")}


# ---------------------------------------------------------------- where a value goes

Send = Callable[[str], dict]  # a value -> the keyword arguments of client.open


def query(name: str, **others) -> Send:
    return lambda v: {"query_string": others | {name: v}}


def form(name: str, **others) -> Send:
    return lambda v: {"data": others | {name: v}}


def body(name: str, **others) -> Send:
    return lambda v: {"json": others | {name: v}}


def header(name: str) -> Send:
    return lambda v: {"headers": {name: v}}


def cookie(name: str) -> Send:
    # Quoted, a NUL written as the octal escape \000: a real server (gunicorn) refuses a raw NUL
    # in a header but lets this through, and werkzeug decodes it to a NUL.
    return lambda v: {"headers": {"Cookie": f'{name}="{v.replace(chr(0), OCTAL_NUL)}"'}}


def in_path(v: str) -> dict:
    return {}


@dataclass(frozen=True)
class Case:
    """`url` holds `{v}` where the value goes in the path, `{edition}` for the edition's id;
    `valid` is a harmless value (`@name`: one the `seeds` fixture makes) and `ok` the
    statuses it is answered with."""

    id: str
    method: str
    url: str
    send: Send
    valid: str
    ok: tuple[int, ...] = (200, 302, 303)
    auth: str = ""  # "operator" (one exists), "console" (signed in) or "bearer" (a token)
    shop: bool = False  # needs Stripe (the sandbox)
    extra: dict = field(default_factory=dict)


SIGNUP = {"email": "reader@example.com", "consent": "yes", "website": ""}
EVENT = {"event": "seen", "prompt": "membership", "variant": "appeal-2026-11:journalism"}
EDITION = {"date": "", "articles": "story"}

CASES = [
    # reader pages and their API
    Case("article-slug", "GET", "/articles/{v}", in_path, "story"),
    Case("api-article-slug", "GET", "/api/v1/articles/{v}", in_path, "story"),
    Case("front-rid-cookie", "GET", "/", cookie("rid"), READER_ID),
    Case("article-member-cookie", "GET", "/articles/story", cookie("member"), "@member_cookie"),
    Case("article-subscriber-cookie", "GET", "/articles/story", cookie("subscriber"), "x"),
    Case("article-user-agent", "GET", "/articles/story", header("User-Agent"), "Mozilla/5.0"),
    Case("prompt-article", "GET", "/api/v1/prompt", query("article"), "story"),
    Case("prompt-rid-cookie", "GET", "/api/v1/prompt?article=story", cookie("rid"), READER_ID),
    Case("prompt-event-prompt", "POST", "/api/v1/prompt/events", body("prompt", **EVENT), "membership",
         ok=(204,)),
    Case("prompt-event-variant", "POST", "/api/v1/prompt/events", body("variant", **EVENT),
         "appeal-2026-11:journalism", ok=(204,)),
    Case("prompt-event-event", "POST", "/api/v1/prompt/events", body("event", **EVENT), "seen", ok=(204,)),
    Case("prompt-event-article", "POST", "/api/v1/prompt/events", body("article", **EVENT), "story", ok=(204,)),
    Case("asset-name", "GET", "/assets/{v}", in_path, "site.css"),
    Case("asset-version", "GET", "/assets/site.css", query("v"), "0123456789ab"),
    Case("reading-history-rid", "GET", "/reading-history", cookie("rid"), READER_ID),
    Case("reading-history-action", "POST", "/reading-history", form("action"), "stop"),
    # the Daily Edition: sign-up, links from mails
    Case("signup-email", "POST", "/newsletter/signup", form("email", **SIGNUP), "reader@example.com"),
    Case("signup-article", "POST", "/newsletter/signup", form("article", **SIGNUP), "story"),
    Case("signup-page", "POST", "/newsletter/signup", form("page", **SIGNUP), "https://example.com/a"),
    Case("signup-honeypot", "POST", "/newsletter/signup", form("website", **SIGNUP), ""),
    Case("signup-referer", "POST", "/newsletter/signup", header("Referer"), "https://example.com/a",
         extra={"data": SIGNUP}),
    Case("signup-user-agent", "POST", "/newsletter/signup", header("User-Agent"), "Mozilla/5.0",
         extra={"data": SIGNUP}),
    Case("api-signup-email", "POST", "/api/v1/signups", body("email", consent=True), "reader@example.com",
         ok=(202,)),
    Case("api-signup-article", "POST", "/api/v1/signups", body("article", email="a@example.com", consent=True),
         "story", ok=(202,)),
    Case("api-signup-page", "POST", "/api/v1/signups", body("page", email="a@example.com", consent=True),
         "https://example.com/a", ok=(202,)),
    Case("confirm-page-token", "GET", "/newsletter/confirm/{v}", in_path, "@confirm"),
    Case("confirm-token", "POST", "/newsletter/confirm/{v}", in_path, "@confirm"),
    Case("confirm-user-agent", "POST", "/newsletter/confirm/@confirm", header("User-Agent"), "Mozilla/5.0"),
    Case("unsubscribe-page-token", "GET", "/newsletter/unsubscribe/{v}", in_path, "@unsubscribe"),
    Case("unsubscribe-page-done", "GET", "/newsletter/unsubscribe/@unsubscribe", query("done"), "pause"),
    Case("one-click-token", "POST", "/newsletter/unsubscribe/{v}", in_path, "@unsubscribe",
         extra={"data": {"List-Unsubscribe": "One-Click"}}),
    Case("one-click-field", "POST", "/newsletter/unsubscribe/@unsubscribe", form("List-Unsubscribe"),
         "One-Click"),
    Case("unsubscribe-action", "POST", "/newsletter/unsubscribe/@unsubscribe", form("action"), "unsubscribe"),
    Case("unsubscribe-days", "POST", "/newsletter/unsubscribe/@unsubscribe", form("days", action="pause"), "7"),
    Case("manage-page-token", "GET", "/newsletter/manage/{v}", in_path, "@manage"),
    Case("manage-action", "POST", "/newsletter/manage/@manage", form("action"), "resume"),
    Case("export-token", "GET", "/newsletter/manage/{v}/export", in_path, "@manage"),
    Case("erase-token", "POST", "/newsletter/manage/{v}/erase", in_path, "@manage",
         extra={"data": {"confirm": "y"}}),
    Case("erase-confirm", "POST", "/newsletter/manage/@manage/erase", form("confirm"), "y"),
    # members
    Case("checkout-prompt", "POST", "/membership/checkout", form("prompt", variant="warm", article="story"),
         "membership", shop=True),
    Case("checkout-variant", "POST", "/membership/checkout", form("variant", prompt="membership"), "warm",
         shop=True),
    Case("checkout-article", "POST", "/membership/checkout", form("article", prompt="membership"), "story",
         shop=True),
    Case("checkout-member-cookie", "POST", "/membership/checkout", cookie("member"), "@member_cookie",
         shop=True),
    Case("checkout-success-session", "GET", "/membership/success", query("session_id"), "cs_test_unknown",
         ok=(404,), shop=True),
    Case("billing-link-page", "GET", "/membership/billing/{v}", in_path, "@portal"),
    # (The member has no Stripe customer yet: a valid link ends on the link's problem page.)
    Case("billing-link", "POST", "/membership/billing/{v}", in_path, "@portal", ok=(404,)),
    Case("member-sign-in-email", "POST", "/account/sign-in", form("email"), "member@example.com"),
    Case("member-link-page", "GET", "/account/sign-in/{v}", in_path, "@signin"),
    Case("member-link", "POST", "/account/sign-in/{v}", in_path, "@signin"),
    Case("account-member-cookie", "GET", "/account", cookie("member"), "@member_cookie"),
    Case("portal-member-cookie", "POST", "/account/portal", cookie("member"), "@member_cookie", ok=(404,)),
    # the operator console
    Case("login-next", "GET", "/operator/login", query("next"), "/operator/editions"),
    Case("login-email", "POST", "/operator/login", form("email", password=PASSWORD), "desk@example.org",
         auth="operator"),
    Case("login-password", "POST", "/operator/login", form("password", email="desk@example.org"), PASSWORD,
         auth="operator"),
    Case("login-next-field", "POST", "/operator/login", form("next", email="desk@example.org", password=PASSWORD),
         "/operator/editions", auth="operator"),
    Case("console-edition-articles", "POST", "/operator/editions", form("articles"), "story", auth="console"),
    Case("console-edition-date", "POST", "/operator/editions", form("date", **EDITION), "2026-11-25",
         auth="console"),
    Case("console-edition-latest", "POST", "/operator/editions", form("latest", **EDITION), "1", auth="console"),
    Case("preview-audience", "GET", "/operator/editions/{edition}/preview", query("audience"), "public",
         auth="console"),
    Case("preview-html-audience", "GET", "/operator/editions/{edition}/preview/html", query("audience"),
         "members", auth="console"),
    Case("test-send-to", "POST", "/operator/editions/{edition}/test-send", form("to"), "desk@example.org",
         auth="console"),
    Case("test-send-audience", "POST", "/operator/editions/{edition}/test-send",
         form("audience", to="desk@example.org"), "public", auth="console"),
    Case("caught-mail-id", "GET", "/operator/mail/{v}", in_path, MESSAGE_ID, ok=(404,), auth="console"),
    Case("caught-mail-html-id", "GET", "/operator/mail/{v}/html", in_path, MESSAGE_ID, ok=(404,),
         auth="console"),
    Case("caught-mail-raw-id", "GET", "/operator/mail/{v}/raw", in_path, MESSAGE_ID, ok=(404,), auth="console"),
    Case("old-mail-path", "GET", "/dev/mail/{v}", in_path, MESSAGE_ID),
    Case("prompt-form-id", "GET", "/operator/prompts/rules/prompts/{v}", in_path, "membership-appeal",
         ok=(200,), auth="console"),
    # No `based_on` the sweep could know: a valid id is refused as made from older rules.
    Case("prompt-form-save-id", "POST", "/operator/prompts/rules/prompts/{v}", form("min_reads"), "membership-appeal",
         ok=(409,), auth="console"),
    # the operator JSON API
    Case("api-bearer-token", "GET", "/api/v1/subscribers/counts", header("Authorization"), "@bearer"),
    Case("api-edition-articles", "POST", "/api/v1/editions", lambda v: {"json": {"articles": [v]}}, "story",
         ok=(201,), auth="bearer"),
    Case("api-edition-date", "POST", "/api/v1/editions", body("date", articles=["story"]), "2026-11-25",
         ok=(201,), auth="bearer"),
    Case("api-report-email", "POST", "/api/v1/suppressions/reports",
         lambda v: {"json": {"reports": [{"email": v, "type": "hard"}]}}, "gone@example.com", auth="bearer"),
    Case("api-report-type", "POST", "/api/v1/suppressions/reports",
         lambda v: {"json": {"reports": [{"email": "gone@example.com", "type": v}]}}, "hard", auth="bearer"),
    Case("api-report-at", "POST", "/api/v1/suppressions/reports",
         lambda v: {"json": {"reports": [{"email": "gone@example.com", "type": "hard", "at": v}]}},
         "2026-11-25T10:00:00", auth="bearer"),
    Case("api-report-detail", "POST", "/api/v1/suppressions/reports",
         lambda v: {"json": {"reports": [{"email": "gone@example.com", "type": "hard", "detail": v}]}},
         "550 no such user", auth="bearer"),
]


def hostile(valid: str) -> dict[str, str]:
    """The values each case is sent: the valid one, a NUL inside it, a NUL alone, 10 000 characters."""
    middle = len(valid) // 2
    return {"valid": valid, "nul-inside": f"{valid[:middle]}\x00{valid[middle:]}", "nul": "\x00",
            "long": "x" * 10_000}


SENT = [pytest.param(case, kind, id=f"{case.id}-{kind}") for case in CASES for kind in hostile("v")]


# ---------------------------------------------------------------- what the cases need

@pytest.fixture
def seeds(app) -> dict[str, str]:
    """A story, a confirmed and a pending subscriber, a member with an address, an edition:
    the values `@name` stands for."""
    with app.app_context():
        session = db.session()
        make_article(session, slug="story", headline="A story")
        confirmed = make_subscriber(session, "reader@example.com")
        pending = make_subscriber(session, "pending@example.com", state="pending")
        reader = memberships.new_reader(session, "member@example.com")
        edition = editions.create_edition(session, day=date(2026, 11, 25), slugs=["story"], count=8, tz="UTC")
        values = {"confirm": make_confirmation_token(session, pending),
                  "unsubscribe": link_token(confirmed, "unsubscribe"), "manage": link_token(confirmed, "manage"),
                  "signin": member_signin.issue_token(session, reader.id, utcnow()),
                  "portal": member_mails.portal_token(SECRET_KEY, reader.id), "edition": str(edition.id),
                  "reader": reader.id}
        session.commit()
    # The sign-in cookie of that member, as web.member_session signs it.
    values["member_cookie"] = URLSafeTimedSerializer(SECRET_KEY, salt=member_session.SALT).dumps(values["reader"])
    return values


def resolved(text: str, seeds: dict[str, str]) -> str:
    for name, value in seeds.items():
        text = text.replace(f"@{name}", value)
    return text


@pytest.fixture
def shop(request, app, runner):
    """Stripe for the cases that reach it: the sandbox, and the plan `stripe sync` makes."""
    sandbox = request.getfixturevalue("stripe_sandbox")
    app.config.update(stripe_settings(sandbox))
    result = runner.invoke(args=["stripe", "sync"])
    assert result.exit_code == 0, result.output
    return sandbox


def prepared(request, app, client, case: Case, seeds: dict[str, str]) -> dict:
    """Sign in or make a token as the case needs; the headers to send."""
    if case.shop:
        request.getfixturevalue("shop")
    if case.auth == "bearer" or case.valid == "@bearer":
        seeds["bearer"] = bearer(app)["Authorization"]
    if case.auth in ("console", "operator"):
        make_operator(app)
    if case.auth == "console":
        assert sign_in(client).status_code == 303
    if case.auth == "bearer":
        return {"Authorization": seeds["bearer"]}
    return {}


# ---------------------------------------------------------------- the sweep

@pytest.mark.parametrize(("case", "kind"), SENT)
def test_no_string_makes_a_5xx(request, app, client, seeds, run_queued, case, kind):
    headers = prepared(request, app, client, case, seeds)
    value = hostile(resolved(case.valid, seeds))[kind]
    sent = case.extra | case.send(value)
    sent["headers"] = headers | sent.get("headers", {})
    url = resolved(case.url, seeds).format(v=quote(value, safe=""), edition=seeds["edition"])
    if "Cookie" in sent["headers"]:  # a client with a cookie jar would send the jar's instead
        client = app.test_client(use_cookies=False)

    response = client.open(url, method=case.method, **sent)
    response.get_data()
    response.close()  # an asset is a file

    if kind == "valid":
        assert response.status_code in case.ok, (response.status, response.data[:300])
    assert response.status_code < 500, (response.status, response.data[:300])
    if response.status_code >= 400:
        assert_clear_error(url, response)
    run_queued()  # what the request queued, a worker can do (it fails the test otherwise)


def assert_clear_error(url: str, response) -> None:
    """A 4xx says what went wrong in the caller's format: JSON under /api/, else a page."""
    if url.startswith("/api/"):
        assert response.is_json and response.json["error"]["message"], response.data[:300]
    else:
        assert response.mimetype == "text/html" and b"<html" in response.data.lower(), response.data[:300]


def test_every_route_taking_a_string_is_swept(app):
    """A new route with a string in its path is added to CASES, or this fails."""
    swept = {_pattern(case.url) for case in CASES}
    taking_strings = {rule.rule for rule in app.url_map.iter_rules() if re.search(r"<(?!int:)[^>]+>", rule.rule)}
    assert {rule for rule in taking_strings if _pattern(rule) not in swept} == set()


def _pattern(url: str) -> str:
    """`/newsletter/confirm/<token>` and `/newsletter/confirm/{v}` alike: `/newsletter/confirm/*`."""
    return re.sub(r"<[^>]+>|\{[^}]+\}|@\w+", "*", url.split("?")[0])
