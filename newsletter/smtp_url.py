"""NEWSLETTER_SMTP_URL: `smtp://[user:pass@]host:port[?starttls=1][&timeout=S]` or
`smtps://…`, read into settings, and shown with its password hidden (newsletter.mail sends)."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
DEFAULT_TIMEOUT = 30.0
TRUE_WORDS, FALSE_WORDS = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


class InvalidSmtpUrl(ValueError):
    """NEWSLETTER_SMTP_URL cannot be used; the message says why (never the password)."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False   # smtps://
    starttls: bool = False       # smtp://…?starttls=1
    timeout: float = DEFAULT_TIMEOUT


def parse_smtp_url(url: str) -> SmtpSettings:
    """`smtp://[user:pass@]host:port[?starttls=1][&timeout=S]` or `smtps://…` as settings."""
    parts = urlsplit(url.strip())
    shown = redact(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise InvalidSmtpUrl(f"{shown}: the address must start with smtp:// or smtps://")
    if not parts.hostname:
        raise InvalidSmtpUrl(f"{shown}: no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise InvalidSmtpUrl(f"{shown}: unexpected path or fragment after host:port")
    options = _url_options(parts.query, shown)
    if parts.scheme == "smtps" and options["starttls"]:
        raise InvalidSmtpUrl(f"{shown}: smtps:// is TLS from the start; starttls=1 is for smtp://")
    username, password = _credentials(parts, shown)
    return SmtpSettings(host=parts.hostname, port=_port(parts, shown), username=username,
                        password=password, implicit_tls=parts.scheme == "smtps", **options)


def redact(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    parts = urlsplit(url.strip())
    if parts.password is None:
        return url.strip()
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _port(parts, shown: str) -> int:
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        return DEFAULT_PORTS[parts.scheme]
    if not 0 < port < 65536:
        raise InvalidSmtpUrl(f"{shown}: the port must be a number from 1 to 65535")
    return port


def _credentials(parts, shown: str) -> tuple[str | None, str | None]:
    if parts.username is None:
        return None, None
    if parts.password is None:
        raise InvalidSmtpUrl(f"{shown}: a user name needs a password (user:pass@host)")
    return unquote(parts.username), unquote(parts.password)


def _url_options(query: str, shown: str) -> dict:
    options = {"starttls": False, "timeout": DEFAULT_TIMEOUT}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "starttls" and value.lower() in TRUE_WORDS | FALSE_WORDS:
            options["starttls"] = value.lower() in TRUE_WORDS
        elif key == "timeout" and _positive_number(value):
            options["timeout"] = float(value)
        else:
            raise InvalidSmtpUrl(f"{shown}: cannot use ?{key}={value} "
                                 "(known: starttls=1|0, timeout=SECONDS)")
    return options


def _positive_number(value: str) -> bool:
    try:
        return 0 < float(value) < float("inf")
    except ValueError:
        return False
