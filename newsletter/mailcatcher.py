"""The built-in mail catcher's other halves: its SMTP server and its reader.

`CatcherSmtpServer` listens on loopback (aiosmtpd) and keeps every message it accepts with
`mail.store_message`, the same store CatcherSender writes, so one folder holds all caught
mail however it came. `list_messages` and `read_message` read that folder for /dev/mail.
"""
from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from newsletter.mail import store_message

LOOPBACK = "127.0.0.1"
MESSAGE_ID = re.compile(r"^(\d{8}T\d{12}Z)-[0-9a-f]{8}$")


class MessageNotFound(LookupError):
    """No caught message has that id."""


# ---------------------------------------------------------------- the SMTP server

def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free right now (aiosmtpd's Controller cannot take port 0)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class CatcherSmtpServer:
    """An SMTP server on loopback that stores every accepted message in `directory`."""

    def __init__(self, directory: str | os.PathLike, host: str = LOOPBACK,
                 port: int | None = None) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self._controller = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> CatcherSmtpServer:
        from aiosmtpd.controller import Controller

        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        controller = Controller(_StoreHandler(self.directory), hostname=self.host,
                                port=self.port, enable_SMTPUTF8=True)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> CatcherSmtpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _StoreHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server, session, envelope) -> str:
        message_id = store_message(self.directory, envelope.original_content,
                                   envelope.mail_from, list(envelope.rcpt_tos))
        return f"250 OK caught as {message_id}"


# ---------------------------------------------------------------- the reader

@dataclass(frozen=True)
class CaughtSummary:
    id: str
    caught_at: datetime
    mail_from: str
    to: str
    subject: str
    date: datetime          # the Date header, or the time it was caught


@dataclass(frozen=True)
class CaughtMessage(CaughtSummary):
    headers: list[tuple[str, str]]
    text: str | None        # the text/plain part
    html: str | None        # the text/html part
    size: int


def list_messages(directory: str | os.PathLike, limit: int = 200) -> list[CaughtSummary]:
    """Caught messages, newest first, read from their headers only."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    names = sorted((p.stem for p in folder.glob("*.eml") if MESSAGE_ID.match(p.stem)),
                   reverse=True)
    summaries = []
    for message_id in names[:limit]:
        try:
            with open(folder / f"{message_id}.eml", "rb") as f:
                headers = BytesHeaderParser(policy=policy.default).parse(f)
        except FileNotFoundError:  # deleted since the listing
            continue
        summaries.append(_summary(message_id, headers))
    return summaries


def read_message(directory: str | os.PathLike, message_id: str) -> CaughtMessage:
    """One caught message: headers, text part and HTML part; MessageNotFound if none."""
    data = raw_message(directory, message_id)
    msg = BytesParser(policy=policy.default).parsebytes(data)
    summary = _summary(message_id, msg)
    return CaughtMessage(**vars(summary), headers=[(k, str(v)) for k, v in msg.items()],
                         text=_body(msg, "plain"), html=_body(msg, "html"), size=len(data))


def raw_message(directory: str | os.PathLike, message_id: str) -> bytes:
    """The stored bytes of one caught message; MessageNotFound if none."""
    if not MESSAGE_ID.match(message_id):  # ids are file names: nothing else gets near the disk
        raise MessageNotFound(message_id)
    try:
        return (Path(directory) / f"{message_id}.eml").read_bytes()
    except FileNotFoundError:
        raise MessageNotFound(message_id) from None


def _summary(message_id: str, msg: EmailMessage) -> CaughtSummary:
    caught_at = datetime.strptime(MESSAGE_ID.match(message_id)[1], "%Y%m%dT%H%M%S%fZ")
    caught_at = caught_at.replace(tzinfo=timezone.utc)
    return CaughtSummary(
        id=message_id, caught_at=caught_at,
        mail_from=_header(msg, "From") or _header(msg, "X-Catcher-Mail-From"),
        to=_header(msg, "To") or _header(msg, "X-Catcher-Rcpt-To"),
        subject=_header(msg, "Subject"),
        date=_date(msg) or caught_at,
    )


def _header(msg: EmailMessage, name: str) -> str:
    value = msg.get(name)
    return "" if value is None else str(value)


def _date(msg: EmailMessage) -> datetime | None:
    try:
        date = parsedate_to_datetime(_header(msg, "Date"))
    except (TypeError, ValueError):
        return None
    return date if date.tzinfo else date.replace(tzinfo=timezone.utc)


def _body(msg: EmailMessage, subtype: str) -> str | None:
    part = msg.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or lying charset: show what we can
        content = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return content.replace("\r\n", "\n")  # SMTP's line ends
