"""A mail serialized once and filled per recipient by joining bytes.

Sending one edition to many readers, only a few values differ per recipient: the To
header, Date, Message-ID, the unsubscribe link... Building an EmailMessage per recipient
costs about a millisecond; a `Skeleton` is the complete RFC 5322 message (CRLF line ends,
folded headers, multipart/alternative, UTF-8 parts in quoted-printable) cut at those
places, so a recipient's message is one `b"".join` of fixed pieces and their values.

Values land in the body encoded as their place needs: HTML-escaped in the HTML part, then
quoted-printable in both parts. Each value sits on quoted-printable lines of its own
(soft line breaks before and after it), so no line grows past 76 characters whatever the
value's length, and the parser reads the exact value back. The boundary contains "==",
which quoted-printable text never holds, so no value can end a part early.

Rendered text carries `Slots` markers (ASCII letters and digits, which autoescaping,
the CSS inliner and quoted-printable all leave alone) where the values go.
"""
from __future__ import annotations

import base64
import binascii
import html
import re
import secrets
from email import policy
from email.utils import formataddr
from typing import Callable

_QP_SOFT_BREAK = b"=\r\n"
_CONTROL = dict.fromkeys(range(32)) | {127: None}


class Slots:
    """Unique marker strings for the per-recipient values named `names`."""

    def __init__(self, names: tuple[str, ...]) -> None:
        nonce = secrets.token_hex(6)
        self.names = names
        self.markers = {name: f"SLOT{nonce}X{name.upper()}X" for name in names}
        self.pattern = re.compile(f"SLOT{nonce}X([A-Z_]+)X")

    def split(self, text: str) -> list[str]:
        """`text` cut at the markers: text, slot name, text, slot name, …, text."""
        parts = self.pattern.split(text)
        for i in range(1, len(parts), 2):
            parts[i] = parts[i].lower()
        return parts


class Skeleton:
    """A multipart/alternative message with per-recipient header lines and body values.

    `headers` is a list of (name, value) pairs in order; a value of None marks a header
    line the caller gives per recipient, under the header's name (see `fill`). `parts`
    is a list of (subtype, text with slot markers): "plain" first, then "html".
    """

    def __init__(self, headers: list[tuple[str, str | None]], parts: list[tuple[str, str]],
                 slots: Slots) -> None:
        self.headers = list(headers)
        self.parts = list(parts)
        self.slots = slots
        boundary = f"=={secrets.token_hex(12)}=="
        self._pieces: list[bytes | str] = []
        self._encoders: dict[str, tuple[str, Callable[[str], bytes]]] = {}
        self._add_headers(boundary)
        for subtype, text in self.parts:
            self._add_part(boundary, subtype, text)
        self._add(f"--{boundary}--\r\n".encode())

    def with_header(self, name: str, value: str) -> Skeleton:
        """A copy with the static header `name` set to `value` (e.g. a test send's subject)."""
        headers = [(n, value if n == name else v) for n, v in self.headers]
        return Skeleton(headers, self.parts, self.slots)

    def fill(self, lines: dict[str, bytes], values: dict[str, str]) -> bytes:
        """The message for one recipient: `lines` holds each per-recipient header line
        (`header_line`, `address_line`), `values` each slot's text."""
        encoded = dict(lines)
        for key, (slot, encode) in self._encoders.items():
            encoded[key] = encode(values[slot])
        return b"".join([p if p.__class__ is bytes else encoded[p] for p in self._pieces])

    def _add(self, piece: bytes | str) -> None:
        if piece.__class__ is bytes and self._pieces and self._pieces[-1].__class__ is bytes:
            self._pieces[-1] += piece
        else:
            self._pieces.append(piece)

    def _add_headers(self, boundary: str) -> None:
        for name, value in self.headers:
            self._add(name if value is None else static_header(name, value))
        self._add(b"MIME-Version: 1.0\r\n")
        self._add(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode())

    def _add_part(self, boundary: str, subtype: str, text: str) -> None:
        self._add(f"--{boundary}\r\nContent-Type: text/{subtype}; charset=\"utf-8\"\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode())
        pieces = self.slots.split(text.replace("\r\n", "\n"))
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                self._add(_qp(piece) + (_QP_SOFT_BREAK if i + 1 < len(pieces) else b""))
            else:
                key = f"{subtype}:{piece}"
                self._encoders[key] = (piece, _qp_value_html if subtype == "html" else _qp_value)
                self._add(key)
        self._add(b"\r\n")


# ---------------------------------------------------------------- encodings

def _qp(text: str) -> bytes:
    # b2a_qp keeps "\n" line ends (and encodes any lone "\r"), so this makes them CRLF.
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def _qp_value(value: str) -> bytes:
    return _qp(_printable(value)) + _QP_SOFT_BREAK


def _qp_value_html(value: str) -> bytes:
    return _qp(html.escape(_printable(value))) + _QP_SOFT_BREAK


def _printable(value: str) -> str:
    # isprintable() is the fast test; it also fails on harmless non-ASCII spaces.
    return value if value.isprintable() else value.translate(_CONTROL)


def encoded_words(text: str) -> str:
    """`text` as RFC 2047 base64 encoded words of at most 75 characters, folded.

    Words are cut after a space where one is near, the space kept inside the earlier word:
    readers ignore the folding between encoded words (Python's own parser adds a space).
    """
    words, chunk = [], ""
    for char in text:
        # 45 bytes make 60 base64 characters: with "=?utf-8?b?" and "?=", 72.
        if len((chunk + char).encode("utf-8")) > 45:
            cut = chunk.rfind(" ") + 1 or len(chunk)
            words.append(chunk[:cut])
            chunk = chunk[cut:]
        chunk += char
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words)


def static_header(name: str, value: str) -> bytes:
    """A header line folded and RFC 2047-encoded as the standard library does (slow: once)."""
    return policy.SMTP.header_factory(name, value).fold(policy=policy.SMTP).encode("ascii")


def header_line(name: str, value: str) -> bytes:
    """`Name: value` for an ASCII value that needs no encoding (Date, Message-ID, a URL)."""
    return f"{name}: ".encode() + ascii_value(name, value) + b"\r\n"


def ascii_value(name: str, value: str) -> bytes:
    """`value` as bytes for a header, refused when it is not one line of ASCII."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} cannot hold a line break")
    return value.encode("ascii")


def address_line(name: str, display_name: str, address: str) -> bytes:
    """`To: Display Name <address>`, the name quoted or RFC 2047-encoded as it needs."""
    display_name = " ".join(_printable(display_name).split())
    if "\r" in address or "\n" in address:
        raise ValueError(f"{name} cannot hold a line break")
    if not display_name:
        value = address
    elif display_name.isascii():
        value = formataddr((display_name, address))
    else:
        words = encoded_words(display_name)
        last_line = words.rpartition("\n")[2] if "\n" in words else f"{name}: {words}"
        fold = " " if len(last_line) + len(address) + 3 <= 78 else "\r\n "
        value = f"{words}{fold}<{address}>"
    # A non-ASCII local part stays UTF-8 here: such mail needs an SMTPUTF8 server anyway.
    return f"{name}: {value}\r\n".encode("utf-8")
