"""Configuration: embedded defaults, then NEWSLETTER_* from the environment, then tests'.

Every variable is optional (CONTRACT.md); a value left unset means "use the embedded
part", which `newsletter dev` starts (an embedded Redis, the mail catcher, the Stripe
sandbox).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

DEFAULTS = {
    "DATABASE_URL": None,        # None: SQLite file in the instance folder
    "REDIS_URL": None,           # None: tasks run nowhere until `newsletter dev` sets one
    "SMTP_URL": None,            # None: the built-in mail catcher
    "MAIL_FROM": "Daily Edition <daily@localhost>",
    "BASE_URL": "http://127.0.0.1:5000",
    "SECRET_KEY": None,          # None: generated once, kept in the instance folder
    # The console's session (and every form's CSRF token) stays home: no cross-site POST carries it.
    "SESSION_COOKIE_SAMESITE": "Lax",
    "STRIPE_SECRET_KEY": None,
    "STRIPE_WEBHOOK_SECRET": None,
    "STRIPE_API_BASE": None,
    "STRIPE_PRICE_ID": None,
    # Membership (newsletter.memberships, newsletter.billing; docs/membership.md).
    "MEMBERSHIP_GRACE_DAYS": 7,  # past_due keeps a member's benefits this long
    "MEMBER_COOKIE_DAYS": 30,    # a member's sign-in lasts this long
    "MEMBERSHIP_NAME": "Community membership",
    "MEMBERSHIP_CURRENCY": "usd",
    "MEMBERSHIP_MONTHLY_AMOUNT": 600,   # smallest currency unit: 600 is $6.00 a month
    "MEMBERSHIP_ANNUAL_AMOUNT": None,   # e.g. 6000; None: no annual price
    "MEMBERSHIP_TRIAL_DAYS": 0,  # a free trial before the first payment; 0: none
    "SIGN_IN_LINK_MINUTES": 15,  # a member's sign-in link expires after this long
    "SIGN_IN_LIMIT": "5 per minute; 20 per hour",  # sign-in link requests per client IP
    # The membership prompt (newsletter.prompts, web.prompt_reader; docs/prompts.md).
    "PROMPT_RULES": None,        # the rules file; None: newsletter/prompt_rules.json
    "PROMPT_DELIVERY": "script",  # "script": pages alike for all, the slot filled from
                                 # GET /api/v1/prompt; "page": decided in the page (no JS needed)
    "PROMPT_REQUIRE_CONSENT": False,  # True: count reading only with the consent cookie below
    "PROMPT_CONSENT_COOKIE": "reading_consent",  # set by the site's consent manager: yes/1/true/granted
    "PROMPT_PRICE": None,        # "{price}" in prompt copy; None: from MEMBERSHIP_MONTHLY_AMOUNT
    "PROMPT_STORY_CACHE_SECONDS": 60,  # a story's section, tags and access kept in process
    "PROMPT_READS_DELAY_SECONDS": 0.05,  # a claimed view's read goes to Redis this long after, with others (0: at once)
    "ARTICLE_MAX_AGE": 60,       # Cache-Control max-age of article pages alike for every reader
    "PUBLICATION_NAME": "The Daily Edition",
    "CONSENT_TEXT": "I agree to receive the Daily Edition by email and accept the newsletter terms.",
    "CONFIRM_TOKEN_HOURS": 48,   # a double opt-in link expires after this many hours
    "SIGNUP_MAILS_PER_HOUR": 3,  # sign-up mails (confirmation, already subscribed) per address
    "LIST_UNSUBSCRIBE_MAILTO": None,  # mailto of List-Unsubscribe; None: the MAIL_FROM address
    "FRONT_PAGE_ARTICLES": 20,
    "FEED_FETCH_TIMEOUT": 20,    # seconds for one feed URL
    "FEED_MAX_BYTES": 5_000_000,
    "FEEDS": [],                 # feed URLs beat polls; JSON list in the environment
    "FEED_POLL_MINUTES": 15,
    "MAIL_CATCHER_DIR": None,    # None: instance/mail
    "MAIL_CATCHER": False,       # True: SMTP_URL is the catcher's own server (`newsletter dev` sets it)
    "INSTANCE_PATH": None,       # None: Flask's instance folder
    # Editions (newsletter.editions, newsletter.edition_render, newsletter.dkim).
    "TIMEZONE": "UTC",           # the newsroom's zone, e.g. "Europe/London": which stories are "the day's"
    "EDITION_STORIES": 8,        # stories in an edition assembled from the day's news
    # The daily schedule and the operator console (newsletter.schedule, web.console; docs/operator.md).
    "DAILY_SEND_AT": None,       # "07:00": beat sends the day's edition then, in TIMEZONE; None: no daily send
    "DAILY_SEND_WINDOW": 60,     # minutes after DAILY_SEND_AT in which the schedule still sends
    "CONSOLE_SESSION_HOURS": 12,  # a console sign-in lasts this long
    "CONSOLE_LOGIN_LIMIT": "10 per minute; 100 per hour",  # console sign-in attempts per client IP
    "REPLY_TO": None,            # Reply-To of editions; None: no Reply-To (replies go to MAIL_FROM)
    "DKIM_PRIVATE_KEY": None,    # PEM text or a PEM file's path; None: no DKIM signing (the relay may sign)
    "DKIM_SELECTOR": None,       # needed with DKIM_PRIVATE_KEY: the key's DNS name is <selector>._domainkey.<domain>
    "DKIM_DOMAIN": None,         # d= of the signature; None: the MAIL_FROM address's domain
    # Sign-up and subscription pages (newsletter.web.subscriptions, newsletter.limits).
    "PROXY_FIX": None,           # None: X-Forwarded-* ignored; N: trust N proxies for
                                 # X-Forwarded-For/-Proto; {"x_for": 1, ...}: ProxyFix's own arguments
    "CORS_ORIGINS": [],          # origins allowed to POST /api/v1/signups from a browser; JSON list
    "RATELIMIT_ENABLED": True,   # False: no rate limits at all (Flask-Limiter's own switch)
    "RATELIMIT_STORAGE_URI": None,  # None: REDIS_URL, or memory:// when that is unset too
    "SIGNUP_LIMIT_PER_IP": "10 per minute; 100 per hour",
    "SIGNUP_LIMIT_PER_ADDRESS": "3 per hour",  # keyed by the normalised address's hash
    "SIGNUP_MAX_BYTES": 16_384,  # a sign-up request body larger than this is refused (413)
    # Article pages stay open for hours before a reader signs up: the CSRF token lives as
    # long as the session cookie instead of Flask-WTF's default hour.
    "WTF_CSRF_TIME_LIMIT": None,
    # Delivery of editions (newsletter.delivery, docs/delivery.md). Seconds unless named.
    "SEND_RATE": 0,              # messages per second across every worker; 0: no limit
    "SEND_BURST": 0,             # tokens the shared bucket holds; 0: one second's worth
    "SEND_BATCH_SIZE": 500,      # deliveries per batch task (one SMTP connection each)
    "SEND_PLAN_CHUNK": 20_000,   # subscriber ids per INSERT … SELECT when planning
    "SEND_MAX_ATTEMPTS": 8,      # transient failures (4xx, dropped connection) before failed
    "SEND_RETRY_BASE": 30,       # first retry delay; doubles per attempt, with jitter
    "SEND_RETRY_MAX": 300,       # longest retry delay (far below queue.VISIBILITY_TIMEOUT)
    "SEND_LEASE": 120,           # a running batch's claim; renewed while it runs, so a dead
                                 # worker's rows are taken over this long after it died
    "SEND_QUEUE_GRACE": 900,     # a queued batch's reservation: its rows are queued again
                                 # when no worker took them up within this time
    "SEND_PLAN_GRACE": 300,      # a send not planned this long after its start is planned again
    "SEND_SWEEP_SECONDS": 60,    # how often beat runs the sweeper
    # PostgreSQL: each "sent" mark waits for the disk. false: for the server only (a
    # PostgreSQL crash may then forget the last fraction of a second of marks, and those
    # messages go again); worth it only on a slow disk with few workers (docs/delivery.md).
    "SEND_SYNCHRONOUS_COMMIT": True,
}


def load(app: Flask, test_config: dict | None) -> None:
    """Fill app.config in the documented order and make the derived values concrete."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("NEWSLETTER")
    if test_config:
        app.config.from_mapping(test_config)
    if app.config.get("INSTANCE_PATH"):
        app.instance_path = str(app.config["INSTANCE_PATH"])
    app.config["INSTANCE_PATH"] = app.instance_path  # concrete, for those that keep files there
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'newsletter.db'}"
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = instance_secret(instance / "secret_key")
    if not app.config["MAIL_CATCHER_DIR"]:
        app.config["MAIL_CATCHER_DIR"] = str(instance / "mail")
    app.config["BASE_URL"] = app.config["BASE_URL"].rstrip("/")


def instance_secret(path: Path) -> str:
    """A random key made once and kept in `path`, so restarts keep sessions and tokens."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    # Write a private file, then link it into place: link() fails when the name exists,
    # so when gunicorn's workers start together one key wins and the others read it.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()
