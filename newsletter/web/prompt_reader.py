"""The prompt slot for this request: who reads (cookies, User-Agent, sign-in), the decision, its HTML.

Cookies:
- `rid`: the anonymous reader id (32 hex digits), set when the reader is first counted;
- `no_reading_history`: the reader opted out of being counted (docs/prompts.md);
- PROMPT_CONSENT_COOKIE: set by the site's consent manager; with PROMPT_REQUIRE_CONSENT
  on, a reader is counted only when its value is one of CONSENT_VALUES;
- `subscriber`: signed, set when this browser signed up to or confirmed the Daily Edition;
- `prompt_claim`: signed, what the reader's next page views get (newsletter.web.claim_cookie).
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from flask import Flask, Response, current_app, render_template, request
from itsdangerous import BadSignature, URLSafeSerializer

from newsletter import articles, db, prompt_claims, prompt_history, prompts
from newsletter.deferred_reads import DeferredReads
from newsletter.crawlers import is_bot
from newsletter.models import utcnow
from newsletter.prompt_audience import standing
from newsletter.prompt_rules import InvalidRules, Rules, load_rules, rules_path
from newsletter.prompts import Decision, History, ReaderContext, Story
from newsletter.redis_url import for_redis_py
from newsletter.web import claim_cookie, member_session
from newsletter.web.requestinfo import cookie

log = logging.getLogger(__name__)

READER_COOKIE, OPTOUT_COOKIE, SUBSCRIBER_COOKIE = "rid", "no_reading_history", "subscriber"
READER_ID = re.compile(r"[0-9a-f]{32}")
CONSENT_VALUES = {"1", "yes", "true", "granted", "all"}
SUBSCRIBING_ENDPOINTS = ("subscriptions.signup", "subscriptions.confirm")
COOKIE_DAYS = 400  # the longest browsers keep a cookie
REDIS_TIMEOUTS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
SWITCHED_OFF = Rules(version="(none readable)", enabled=False, prompts=())


@dataclass(frozen=True)
class Slot:
    decision: Decision
    reader: ReaderContext
    new_reader_id: bool  # the `rid` cookie must be set on the response
    html: str
    claim: str | None = None  # a claim to set (claim_cookie.COOKIE) for claim_seconds; '': drop the one there
    claim_seconds: int = 0


def rules(app: Flask | None = None) -> Rules:
    """The rules in force; the file is read at most once a second (load_rules). A file
    that cannot be read or is not valid leaves the last good rules in force (none yet: no
    prompt), logged, so a bad edit on disk never breaks a reader's page."""
    extensions = (app or current_app).extensions
    cached = extensions.get("newsletter.prompt_rules")
    if cached is None or cached[0] < time.monotonic():
        cached = (time.monotonic() + 1, _loaded(cached[1] if cached else SWITCHED_OFF))
        extensions["newsletter.prompt_rules"] = cached
    return cached[1]


def _loaded(last_good: Rules) -> Rules:
    path = rules_path(current_app.config)
    try:
        return load_rules(path)
    except (OSError, InvalidRules) as error:
        log.error("prompt rules %s not used (%s); version %s stays in force", path, error, last_good.version)
        return last_good


def redis_client(app: Flask) -> redis.Redis | None:
    """The Redis that keeps reader histories; None without REDIS_URL (no one is counted)."""
    if "newsletter.prompt_redis" not in app.extensions:
        url = app.config.get("REDIS_URL")
        app.extensions["newsletter.prompt_redis"] = (
            redis.Redis.from_url(for_redis_py(url), **REDIS_TIMEOUTS) if url else None)
    return app.extensions["newsletter.prompt_redis"]


def deferred_reads(app: Flask) -> DeferredReads:
    """The story reads this process counts a moment later (needs REDIS_URL)."""
    if "newsletter.deferred_reads" not in app.extensions:
        app.extensions["newsletter.deferred_reads"] = DeferredReads(
            redis_client(app), app.config["PROMPT_READS_DELAY_SECONDS"])
    return app.extensions["newsletter.deferred_reads"]


def price() -> str:
    config = current_app.config
    return config["PROMPT_PRICE"] or prompts.price_text(config["MEMBERSHIP_MONTHLY_AMOUNT"],
                                                        config["MEMBERSHIP_CURRENCY"])


def init_app(app: Flask) -> None:
    """The slot's API, the reading-history page, and the subscriber cookie after sign-up."""
    from newsletter.web import prompt_api, reading_history

    app.register_blueprint(prompt_api.bp)
    app.extensions["csrf"].exempt(prompt_api.bp)  # JSON only: a form from elsewhere cannot send it
    app.register_blueprint(reading_history.bp)
    app.add_template_global(price, "prompt_price")
    app.after_request(mark_subscriber)


def mark_subscriber(response: Response) -> Response:
    """After a sign-up or a confirmation in this browser, offer it the sign-up no more."""
    if request.endpoint in SUBSCRIBING_ENDPOINTS and response.status_code in (200, 303):
        remember_subscriber(response)
    return response


# ---------------------------------------------------------------- the reader

def reader_context(store: redis.Redis | None, config=None, cookies=None) -> tuple[ReaderContext, bool]:
    """This request's reader, and whether its id is new (a cookie to set)."""
    config = current_app.config if config is None else config
    cookies = request.cookies if cookies is None else cookies
    bot = is_bot(request.environ.get("HTTP_USER_AGENT", ""))
    state, subscriber = reader_standing(cookies)
    counted = store is not None and not bot and state == "none" and may_count(cookies, config)
    reader_id = known_reader_id(cookies)
    new = counted and reader_id is None
    if new:
        reader_id = secrets.token_hex(16)
    return ReaderContext(id=reader_id if counted else None, state=state, subscriber=subscriber,
                         bot=bot, counted=counted), new


def reader_standing(cookies=None) -> tuple[str, bool]:
    """Membership state and subscription, read from the database only for a signed-in reader."""
    cookies = request.cookies if cookies is None else cookies
    # No sign-in cookie, no member (a page that decides a slot never signs a reader in).
    member = member_session.current_reader_id() if member_session.COOKIE in cookies else None
    if member is None:
        return "none", signed_subscriber(cookies)
    state, subscriber = standing(db.session(), member, utcnow(), current_app.config["MEMBERSHIP_GRACE_DAYS"])
    return state, subscriber or signed_subscriber(cookies)


def personal() -> bool:
    """Whether this request's page differs from the one every anonymous reader gets."""
    return bool(request.cookies.get(member_session.COOKIE) or request.cookies.get(SUBSCRIBER_COOKIE))


def may_count(cookies=None, config=None) -> bool:
    cookies = request.cookies if cookies is None else cookies
    config = current_app.config if config is None else config
    if cookie(cookies, OPTOUT_COOKIE):
        return False
    if not config["PROMPT_REQUIRE_CONSENT"]:
        return True
    return cookie(cookies, config["PROMPT_CONSENT_COOKIE"]).lower() in CONSENT_VALUES


def known_reader_id(cookies=None) -> str | None:
    value = cookie(request.cookies if cookies is None else cookies, READER_COOKIE)
    return value if READER_ID.fullmatch(value) else None


def _subscriber_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="subscriber")


def signed_subscriber(cookies=None) -> bool:
    value = cookie(request.cookies if cookies is None else cookies, SUBSCRIBER_COOKIE)
    if not value:
        return False
    try:
        return _subscriber_signer().loads(value) == "1"
    except BadSignature:
        return False


def remember_subscriber(response: Response) -> Response:
    response.set_cookie(SUBSCRIBER_COOKIE, _subscriber_signer().dumps("1"), max_age=COOKIE_DAYS * 86400,
                        httponly=True, samesite="Lax", secure=_secure())
    return response


def remember(response: Response, slot: Slot) -> Response:
    """The cookies a slot's decision leaves: a new reader's id, a new claim or none."""
    if slot.new_reader_id:
        remember_reader(response, slot.reader.id)
    if slot.claim:
        claim_cookie.give(response, slot.claim, slot.claim_seconds, _secure())
    elif slot.claim == "":
        claim_cookie.drop(response)
    return response


def remember_reader(response: Response, reader_id: str) -> Response:
    response.set_cookie(READER_COOKIE, reader_id, max_age=COOKIE_DAYS * 86400, httponly=True,
                        samesite="Lax", secure=_secure())
    return response


def _secure() -> bool:
    return current_app.config["BASE_URL"].startswith("https://")


# ---------------------------------------------------------------- the story

def story_facts(slug: str) -> Story:
    """The story's section, tags and access, kept in process for PROMPT_STORY_CACHE_SECONDS."""
    app = current_app._get_current_object()  # one look-up: every page view asks
    cache = app.extensions.setdefault("newsletter.prompt_stories", {})
    hit = cache.get(slug)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    story = story_of(articles.get(db.session(), slug))
    if len(cache) > 10_000:
        cache.clear()
    cache[slug] = (time.monotonic() + app.config["PROMPT_STORY_CACHE_SECONDS"], story)
    return story


def story_of(article) -> Story:
    return Story(slug=article.slug, section=article.section or "", tags=tuple(article.tags or ()),
                 members_only=article.access == "members")


# ---------------------------------------------------------------- the slot

def slot(story: Story) -> Slot:
    """Decide what the slot shows this reader on `story`, count it, and render it."""
    app, cookies = current_app._get_current_object(), request.cookies  # looked up once: every page view asks
    store = redis_client(app)
    reader, new = reader_context(store, app.config, cookies)
    active = rules(app)
    now = utcnow()
    try:
        counted = decide(app, cookies, store, active, reader, story, now)
    except redis.RedisError as error:  # down, or refusing (out of memory, read-only after a failover)
        log.warning("prompt slot left empty: Redis did not answer or refused (%s)", error)
        counted = prompt_claims.Counted(prompts.NOTHING, "", None, False)
    return Slot(counted.decision, reader, new, render_slot(counted.decision, story.slug, app),
                *claim_cookie.value(app, reader, counted, now.timestamp()))


def decide(app: Flask, cookies, store, active: Rules, reader: ReaderContext, story: Story,
           now) -> prompt_claims.Counted:
    """A counted reader: the story read, the decision and its record in one Redis round trip, or
    none while its claim holds. Any other: decided without history, counted only in the
    variant's counters."""
    if reader.counted:
        return prompt_claims.decide(store, deferred_reads(app), active, reader, story, now,
                                    claim_cookie.claimed(app, cookies, reader.id))
    decision = prompts.prompt_decision(active, reader, story, History(), now)
    if store is not None and not reader.bot:
        prompt_history.record_decision(store, reader.id, decision, now, active.history_days)
    return prompt_claims.Counted(decision, "", None, False)


def render_slot(decision: Decision, slug: str, app: Flask | None = None) -> str:
    """The prompt's HTML: rendered once per prompt, variant, story and count, kept in process.
    Nothing in it is the reader's own: its form's CSRF token is fetched when it is sent."""
    if not decision.show:
        return ""
    return kept(("html", decision.variant_id, slug, decision.articles_read),
                lambda: render_prompt(decision, slug), app)


def answer(slot: Slot, slug: str) -> bytes:
    """GET /api/v1/prompt's JSON body, made once per decision and story like the HTML."""
    decision = slot.decision
    variant = decision.variant_id if decision.show else None
    return kept(("json", decision.show, decision.kind, variant, slug, decision.articles_read),
                lambda: json.dumps({"show": decision.show, "prompt": decision.kind, "variant": variant,
                                    "html": slot.html}).encode())


def kept(key: tuple, make, app: Flask | None = None):
    """`make()`, kept in process per key until the rules change (new rules: new copy)."""
    app = app or current_app._get_current_object()
    active = rules(app)
    store = app.extensions.get("newsletter.prompt_kept")
    if store is None or store[0] is not active or len(store[1]) > 20_000:
        store = app.extensions["newsletter.prompt_kept"] = (active, {})
    value = store[1].get(key)
    if value is None:
        value = store[1][key] = make()
    return value


def render_prompt(decision: Decision, slug: str) -> str:
    variant = decision.variant.copy if decision.variant else {}
    tokens = {"articles_read": str(decision.articles_read), "price": price()}
    return render_template(f"partials/prompts/{decision.kind}.html", decision=decision, slug=slug,
                           copy=filled(variant, tokens), lazy_csrf=True)


def filled(copy: dict, tokens: dict[str, str]) -> dict:
    """The variant's copy (title, body paragraphs, button) with its tokens filled in."""
    result = {}
    for key, value in copy.items():
        if isinstance(value, list):
            result[key] = [prompts.fill_copy(str(v), tokens) for v in value]
        else:
            result[key] = prompts.fill_copy(str(value), tokens)
    return result


# ---------------------------------------------------------------- opting out and in

def stop_counting(response: Response) -> Response:
    """Count this browser no more and forget its history now. When Redis cannot forget it, the
    `rid` cookie stays so that a later try can (/reading-history offers it); nothing is counted
    meanwhile, and what was kept expires by itself."""
    reader_id, store = known_reader_id(), redis_client(current_app)
    try:
        if reader_id is not None and store is not None:
            prompt_history.forget(store, reader_id)
    except redis.RedisError as error:
        log.warning("reading history not forgotten yet: Redis did not answer or refused (%s)", error)
    else:
        response.delete_cookie(READER_COOKIE, httponly=True, samesite="Lax")
        claim_cookie.drop(response)
    response.set_cookie(OPTOUT_COOKIE, "1", max_age=COOKIE_DAYS * 86400, httponly=True, samesite="Lax",
                        secure=_secure())
    return response


def start_counting(response: Response) -> Response:
    """Count this browser again; where consent is required, this is the reader's consent."""
    response.delete_cookie(OPTOUT_COOKIE, httponly=True, samesite="Lax")
    if current_app.config["PROMPT_REQUIRE_CONSENT"]:
        response.set_cookie(current_app.config["PROMPT_CONSENT_COOKIE"], "yes", max_age=COOKIE_DAYS * 86400,
                            samesite="Lax", secure=_secure())
    return response
