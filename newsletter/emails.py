"""Mails to readers: templates in templates/email/<name>/, each mail a function returning its context.

`render` fills subject.txt, body.txt and body.html (only the HTML is autoescaped) and
inlines the HTML's CSS, keeping the @media rules that carry dark mode. `build_message`
makes the multipart message; list mail adds `list_headers` (RFC 8058 one-click).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from urllib.parse import quote

import css_inline
import jinja2

from newsletter import resources
from newsletter.addresses import for_transport
from newsletter.models import Subscriber

HEADER_POLICY = policy.default.clone(max_line_length=998)


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class MailSettings:
    """What mail to readers needs from the configuration (the domain never reads current_app)."""

    base_url: str
    mail_from: str
    secret_key: str
    publication: str = "The Daily Edition"
    unsubscribe_mailto: str = ""   # "": the From address
    confirm_hours: int = 48
    mails_per_hour: int = 3

    @classmethod
    def from_config(cls, config) -> MailSettings:
        """The settings of an app's configuration mapping."""
        return cls(base_url=config["BASE_URL"], mail_from=config["MAIL_FROM"],
                   secret_key=config["SECRET_KEY"], publication=config["PUBLICATION_NAME"],
                   unsubscribe_mailto=config.get("LIST_UNSUBSCRIBE_MAILTO") or "",
                   confirm_hours=int(config.get("CONFIRM_TOKEN_HOURS", 48)),
                   mails_per_hour=int(config.get("SIGNUP_MAILS_PER_HOUR", 3)))


# ---------------------------------------------------------------- the mails

def confirmation(subscriber: Subscriber, confirm_url: str, expires_hours: int) -> dict:
    """The double opt-in mail: one button that leads to the confirmation page."""
    return {"email": subscriber.email, "confirm_url": confirm_url, "expires_hours": expires_hours}


def welcome(subscriber: Subscriber, unsubscribe_url: str, manage_url: str) -> dict:
    """The first list mail, once the address is confirmed."""
    return {"email": subscriber.email, "unsubscribe_url": unsubscribe_url, "manage_url": manage_url}


def already_subscribed(subscriber: Subscriber, unsubscribe_url: str, manage_url: str) -> dict:
    """Sent instead of a confirmation when a confirmed address signs up again."""
    return {"email": subscriber.email, "unsubscribe_url": unsubscribe_url, "manage_url": manage_url}


# ---------------------------------------------------------------- rendering and building

def compose(name: str, context: dict, settings: MailSettings, to: str,
            headers: dict | None = None) -> EmailMessage:
    """Render the mail `name` for `to` with the publication's name and build its message."""
    rendered = render(name, {"publication": settings.publication} | context)
    return build_message(rendered, to, settings.mail_from, headers)


def render(name: str, context: dict) -> RenderedMail:
    """Subject, text and inlined HTML of templates/email/<name>/ filled with `context`."""
    env = _environment()
    subject = env.get_template(f"{name}/subject.txt").render(context)
    text = env.get_template(f"{name}/body.txt").render(context)
    html = env.get_template(f"{name}/body.html").render(context)
    return RenderedMail(" ".join(subject.split()), text.strip() + "\n", _inliner().inline(html))


def build_message(rendered: RenderedMail, to: str, mail_from: str,
                  headers: dict | None = None, now: datetime | None = None) -> EmailMessage:
    """A multipart/alternative message (text, then HTML) with Date and a Message-ID."""
    msg = EmailMessage()  # policy.default: parts encoded in lines of at most 78 characters
    msg["Subject"] = rendered.subject
    msg["From"] = mail_from
    msg["To"] = for_transport(to)
    msg["Date"] = format_datetime(now or datetime.now(timezone.utc))
    msg["Message-ID"] = make_msgid(domain=_domain(mail_from))
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    # Folding at 78 would turn a long List-Unsubscribe URL into encoded words that mail
    # providers do not decode; headers may run to 998 characters (RFC 5322).
    msg.policy = HEADER_POLICY
    return msg


def list_headers(unsubscribe_url: str, mailto: str, list_id: str | None = None) -> dict:
    """RFC 2369/2919/8058 headers of list mail: one-click unsubscribe by URL, or by mail."""
    address = _addr_spec(mailto)
    return {
        "List-Id": list_id or f"<daily-edition.{_domain(address)}>",
        "List-Unsubscribe": f"<{unsubscribe_url}>, <mailto:{quote(address, safe='@')}?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _addr_spec(address: str) -> str:
    return getaddresses([address])[0][1]


def _domain(address: str) -> str:
    return _addr_spec(address).rpartition("@")[2] or "localhost"


@functools.cache
def _environment() -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(resources.templates_dir() / "email")
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined,
                              autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
                              keep_trailing_newline=True)


@functools.cache
def _inliner() -> css_inline.CSSInliner:
    # Inline the rendered HTML, never the Jinja source; keep @media for dark mode.
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
