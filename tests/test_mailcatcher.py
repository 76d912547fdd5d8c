"""The mail catcher: its SMTP server and its reader, all real."""
from __future__ import annotations

import smtplib
import socket
from email.message import EmailMessage

import pytest

from newsletter import mail, mailcatcher, smtp_url


def message(to="reader@example.org", subject="Your sign-up", html="<p>Hello <b>there</b></p>"):
    msg = EmailMessage()
    msg["From"] = "Daily Edition <daily@localhost>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Confirm here: http://newsletter.test/newsletter/confirm/abc\n")
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


@pytest.fixture
def catcher(tmp_path):
    with mailcatcher.CatcherSmtpServer(tmp_path / "caught") as server:
        yield server


def smtp_send(server: mailcatcher.CatcherSmtpServer, msg: EmailMessage) -> None:
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.send_message(msg)


# ---------------------------------------------------------------- the SMTP server

def test_the_server_stores_what_it_accepts(catcher):
    smtp_send(catcher, message(to="ann@example.org", subject="One"))
    smtp_send(catcher, message(to="bob@example.org", subject="Two"))
    listed = mailcatcher.list_messages(catcher.directory)
    assert [(m.to, m.subject) for m in listed] == [("bob@example.org", "Two"), ("ann@example.org", "One")]
    assert listed[0].mail_from == "Daily Edition <daily@localhost>"
    assert listed[0].date.tzinfo is not None
    assert [p.suffix for p in catcher.directory.iterdir()] == [".eml", ".eml"]


def test_the_server_keeps_the_envelope(catcher):
    with smtplib.SMTP(catcher.host, catcher.port, timeout=10) as client:
        client.send_message(message(), to_addrs=["reader@example.org", "blind@example.org"])
    [summary] = mailcatcher.list_messages(catcher.directory)
    headers = dict(mailcatcher.read_message(catcher.directory, summary.id).headers)
    assert headers["X-Catcher-Rcpt-To"] == "reader@example.org, blind@example.org"
    assert headers["X-Catcher-Mail-From"] == "daily@localhost"


def test_smtp_sender_and_the_catcher_server_meet(catcher):
    with mail.SmtpSender(smtp_url.parse_smtp_url(catcher.url)) as sender:
        for n in range(3):
            sender.send(message(subject=f"n{n}"))
    assert [m.subject for m in mailcatcher.list_messages(catcher.directory)] == ["n2", "n1", "n0"]


def test_the_server_listens_on_loopback_only_and_stops(tmp_path):
    server = mailcatcher.CatcherSmtpServer(tmp_path).start()
    assert server.url == f"smtp://127.0.0.1:{server.port}"
    server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


# ---------------------------------------------------------------- the reader

def test_read_message_gives_headers_text_and_html(catcher):
    smtp_send(catcher, message(subject="Parts"))
    [summary] = mailcatcher.list_messages(catcher.directory)
    caught = mailcatcher.read_message(catcher.directory, summary.id)
    assert caught.text == "Confirm here: http://newsletter.test/newsletter/confirm/abc\n"
    assert caught.html.strip() == "<p>Hello <b>there</b></p>"
    assert ("Subject", "Parts") in caught.headers
    assert caught.size > 0


def test_a_text_only_message_has_no_html(catcher):
    smtp_send(catcher, message(html=None))
    [summary] = mailcatcher.list_messages(catcher.directory)
    caught = mailcatcher.read_message(catcher.directory, summary.id)
    assert caught.html is None and caught.text.startswith("Confirm here")


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "nope", "20240101T000000000000Z-zzzzzzzz", ""])
def test_unknown_ids_are_not_found(tmp_path, bad_id):
    with pytest.raises(mailcatcher.MessageNotFound):
        mailcatcher.read_message(tmp_path, bad_id)


def test_an_absent_folder_lists_nothing(tmp_path):
    assert mailcatcher.list_messages(tmp_path / "never-made") == []


def test_the_list_has_a_limit(tmp_path):
    with mail.CatcherSender(tmp_path) as sender:
        for n in range(5):
            sender.send(message(subject=f"n{n}"))
    assert [m.subject for m in mailcatcher.list_messages(tmp_path, limit=2)] == ["n4", "n3"]


# The pages that show caught mail are in the console: tests/web/test_console_mail.py.
