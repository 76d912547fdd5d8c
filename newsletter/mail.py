"""Outgoing mail: one small interface, two implementations chosen by configuration.

`sender(app)` gives an `SmtpSender` when NEWSLETTER_SMTP_URL is set and a `CatcherSender`
(the built-in mail catcher: one .eml file per message in MAIL_CATCHER_DIR) when it is not.
Both are context managers; inside one `with`, SmtpSender keeps one connection for every
message and opens a new one only after the old one broke:

    with mail.sender(app) as outbox:
        for msg in messages:
            try:
                outbox.send(msg)
            except mail.TransientSendError: ...   # 4xx, dropped connection, timeout: later
            except mail.PermanentSendError: ...   # 5xx: never again for those recipients

`newsletter dev` runs the catcher's own SMTP server (newsletter.mailcatcher) and points its
children at it through NEWSLETTER_SMTP_URL, so the workers deliver over real SMTP; it sets
NEWSLETTER_MAIL_CATCHER=1 beside it, and `catcher_in_use` counts that as the catcher too.
"""
from __future__ import annotations

import copy
import functools
import os
import secrets
import smtplib
import ssl
import time
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import getaddresses
from functools import partial
from pathlib import Path
from typing import Callable, Protocol

from flask import Flask, current_app

from newsletter.smtp_url import SmtpSettings, parse_smtp_url

# A connection idle this long is checked with NOOP before the next message: servers drop
# idle clients, and a message lost to that would be reported as a failure for no reason.
IDLE_CHECK_SECONDS = 20.0


class SendError(Exception):
    """A message did not reach some or all of its recipients.

    `recipients` maps each refused address to (SMTP code, server text); it is empty when
    the failure concerned the whole message or the connection.
    """

    def __init__(self, message: str, recipients: dict[str, tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.recipients = dict(recipients or {})


class TransientSendError(SendError):
    """Try again later: a 4xx answer, a dropped connection, a timeout."""


class PermanentSendError(SendError):
    """Do not try again: a 5xx answer."""


class SmtpConnectError(TransientSendError):
    """No usable connection (refused, timeout, TLS, login): about the server, not any recipient."""


class Sender(Protocol):
    """What the delivery code holds: `with sender: sender.send(msg)`."""

    def __enter__(self) -> Sender: ...
    def __exit__(self, *exc) -> None: ...
    def send(self, msg: EmailMessage) -> None: ...
    def send_bytes(self, mail_from: str, rcpt_tos: list[str], data: bytes) -> None: ...
    def close(self) -> None: ...


# ---------------------------------------------------------------- configuration

def init_app(app: Flask) -> None:
    # Parsing now makes a bad NEWSLETTER_SMTP_URL fail at start, not at the first mail.
    app.extensions["mail"] = sender_factory(app.config)


def sender_factory(config) -> Callable[[], Sender]:
    """Builds senders for the configured service: SMTP when SMTP_URL is set, else the catcher."""
    if config.get("SMTP_URL"):
        return partial(SmtpSender, parse_smtp_url(config["SMTP_URL"]))
    return partial(CatcherSender, config["MAIL_CATCHER_DIR"])


def sender(app: Flask | None = None) -> Sender:
    """A new sender (one per batch or thread: an SmtpSender holds a connection)."""
    return (app or current_app).extensions["mail"]()


def catcher_in_use(config) -> bool:
    """True when mail ends in the catcher: SMTP_URL unset, or set by `newsletter dev` to it."""
    return not config.get("SMTP_URL") or bool(config.get("MAIL_CATCHER"))


# ---------------------------------------------------------------- SMTP

class SmtpSender:
    """Sends over SMTP, keeping one connection open until `close()` or the end of `with`."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._last_used = 0.0

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, msg: EmailMessage) -> None:
        """Deliver `msg` to the server, or raise TransientSendError / PermanentSendError."""
        self._attempt(lambda smtp: smtp.send_message(msg))

    def send_bytes(self, mail_from: str, rcpt_tos: list[str], data: bytes) -> None:
        """Deliver a serialized message (CRLF or LF lines) to `rcpt_tos`; errors as `send`."""
        self._attempt(lambda smtp: smtp.sendmail(mail_from, rcpt_tos, data))

    def _attempt(self, transaction: Callable[[smtplib.SMTP], dict]) -> None:
        smtp = self._connection()
        try:
            refused = transaction(smtp)
        except smtplib.SMTPRecipientsRefused as e:
            raise refused_error(e.recipients) from e
        except smtplib.SMTPResponseException as e:
            raise answer_error(e.smtp_code, e.smtp_error) from e
        except smtplib.SMTPNotSupportedError as e:  # e.g. SMTPUTF8 needed, not offered
            raise PermanentSendError(str(e)) from e
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            self._drop()
            raise TransientSendError(f"connection lost while sending: {e or type(e).__name__}") from e
        finally:
            self._forget_if_closed()
        self._last_used = time.monotonic()
        if refused:
            raise refused_error(refused)

    def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None and time.monotonic() - self._last_used > IDLE_CHECK_SECONDS:
            self._check_alive()
        if self._smtp is None:
            self._smtp = self._open()
            self._last_used = time.monotonic()
        return self._smtp

    def _check_alive(self) -> None:
        try:
            code, _ = self._smtp.noop()
        except (smtplib.SMTPException, OSError):
            code = -1
        if code != 250:
            self._drop()

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        context = _tls_context() if s.implicit_tls or s.starttls else None
        try:
            if s.implicit_tls:
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        except (smtplib.SMTPException, OSError) as e:
            raise SmtpConnectError(f"cannot connect to {s.host}:{s.port}: {e}") from e
        try:
            if s.starttls:
                smtp.starttls(context=context)
            if s.username is not None:
                smtp.login(s.username, s.password)
        except (smtplib.SMTPException, OSError) as e:
            smtp.close()
            raise SmtpConnectError(f"{s.host}:{s.port} refused the session: {e}") from e
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _forget_if_closed(self) -> None:
        # smtplib closes the socket itself on a 421 answer; the next message reconnects.
        if self._smtp is not None and self._smtp.sock is None:
            self._smtp = None


def answer_error(code: int, text: bytes | str) -> SendError:
    """The error for an SMTP answer to the whole message: 5xx permanent, else transient."""
    text = _text(text)
    if 500 <= code < 600:
        return PermanentSendError(f"{code} {text}")
    return TransientSendError(f"{code} {text}" if code > 0 else f"no answer: {text}")


def refused_error(refused: dict) -> SendError:
    """The error for refused recipients: permanent only when every refusal is a 5xx."""
    recipients = {addr: (code, _text(text)) for addr, (code, text) in refused.items()}
    if not recipients:
        return PermanentSendError("the message has no recipients")
    detail = "; ".join(f"{a}: {c} {t}" for a, (c, t) in recipients.items())
    permanent = all(500 <= code < 600 for code, _ in recipients.values())
    cls = PermanentSendError if permanent else TransientSendError
    return cls(f"refused {detail}", recipients)


def _text(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


# ---------------------------------------------------------------- the catcher

class CatcherSender:
    """The built-in mail catcher: keeps each message as an .eml file in `directory`."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def __enter__(self) -> CatcherSender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, msg: EmailMessage) -> None:
        """Store `msg` as an SMTP server would receive it (no Bcc header)."""
        mail_from, rcpt_tos = envelope(msg)
        if not rcpt_tos:
            raise PermanentSendError("the message has no recipients")
        visible = copy.copy(msg)
        del visible["Bcc"]
        store_message(self.directory, visible.as_bytes(), mail_from, rcpt_tos)

    def send_bytes(self, mail_from: str, rcpt_tos: list[str], data: bytes) -> None:
        """Store a serialized message as the SMTP server would receive it."""
        if not rcpt_tos:
            raise PermanentSendError("the message has no recipients")
        store_message(self.directory, data, mail_from, list(rcpt_tos))

    def close(self) -> None:
        pass


def envelope(msg: EmailMessage) -> tuple[str, list[str]]:
    """(MAIL FROM, RCPT TO addresses) as smtplib's send_message takes them from headers."""
    sender = msg["Sender"] or msg["From"] or ""
    mail_from = (getaddresses([str(sender)]) or [("", "")])[0][1]
    fields = [str(v) for name in ("To", "Cc", "Bcc") for v in msg.get_all(name, [])]
    return mail_from, [addr for _, addr in getaddresses(fields) if addr]


def store_message(directory: str | os.PathLike, data: bytes, mail_from: str,
                  rcpt_tos: list[str]) -> str:
    """Keep one message as `<id>.eml` in `directory` (written atomically); its id.

    Ids start with the UTC time of arrival, so sorting them sorts by time. The envelope
    goes in front as X-Catcher-Mail-From and X-Catcher-Rcpt-To headers (Bcc shows there).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    message_id = new_message_id()
    tmp = directory / f".{message_id}.tmp"
    with open(tmp, "xb") as f:
        f.write(_envelope_headers(mail_from, rcpt_tos, data) + data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / f"{message_id}.eml")
    return message_id


def new_message_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{secrets.token_hex(4)}"


def _envelope_headers(mail_from: str, rcpt_tos: list[str], data: bytes) -> bytes:
    linesep = b"\r\n" if b"\r\n" in data[:2000] else b"\n"
    fields = {"X-Catcher-Mail-From": mail_from, "X-Catcher-Rcpt-To": ", ".join(rcpt_tos)}
    # One line each, whatever an address holds.
    return b"".join(f"{name}: {' '.join(value.split())}".encode() + linesep
                    for name, value in fields.items())


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the system's CA certificates costs ~50 ms: once per process, not per connection.
    return ssl.create_default_context()
