"""A real SMTP server on loopback (aiosmtpd) that keeps every message, with faults on demand."""
from __future__ import annotations

import email
import threading
import time
from email import policy

from newsletter.mailcatcher import free_port


class SmtpServer:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[str, email.message.EmailMessage]] = []
        self.peers: list[tuple] = []  # the client address of each message: which connection
        self.lock = threading.Lock()
        self.fault = None  # callable(recipient) -> "4xx ..." | "5xx ..." | None
        self.reject_data = None  # "4xx ..." | "5xx ...": the answer to every message's data
        self.port = free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def to(self, address: str) -> list:
        with self.lock:
            return [m for rcpt, m in self.messages if rcpt == address.lower()]

    def wait_for(self, address: str, count: int = 1, timeout: float = 30) -> list:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        return self.to(address)

    def stop(self) -> None:
        # A test may stop it early (a dropped connection); the fixture stops it again.
        if self.controller.loop.is_running():
            self.controller.stop()


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        verdict = self.server.fault(address) if self.server.fault else None
        if verdict:
            return verdict
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.server.reject_data:
            return self.server.reject_data
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.server.lock:
            self.server.peers.append(session.peer)
            for rcpt in envelope.rcpt_tos:
                self.server.messages.append((rcpt.lower(), msg))
        return "250 Message accepted"
