"""Outgoing mail: SmtpSender against a real SMTP server, CatcherSender into a real folder."""
from __future__ import annotations

import socket
from email.message import EmailMessage

import pytest

from newsletter import create_app, mail, mailcatcher, smtp_url


def message(to="reader@example.org", subject="Hello", **headers) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Daily Edition <daily@localhost>"
    msg["To"] = to
    msg["Subject"] = subject
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("Plain words.\n")
    msg.add_alternative("<p>Plain <b>words</b>.</p>", subtype="html")
    return msg


def smtp_sender(smtp_server, query: str = "") -> mail.SmtpSender:
    return mail.SmtpSender(smtp_url.parse_smtp_url(smtp_server.url + query))


def test_a_bad_url_stops_the_app_at_start(tmp_path):
    with pytest.raises(smtp_url.InvalidSmtpUrl):
        create_app({"SMTP_URL": "smtp://mail.example.org:nope", "INSTANCE_PATH": str(tmp_path)})


# ---------------------------------------------------------------- choosing

def test_smtp_url_chooses_smtp(app_config, smtp_server):
    app = create_app(app_config)
    sender = mail.sender(app)
    assert isinstance(sender, mail.SmtpSender)
    assert sender.settings.port == smtp_server.port
    assert not mail.catcher_in_use(app.config)


def test_no_smtp_url_chooses_the_catcher(app_config, tmp_path):
    app = create_app(app_config | {"SMTP_URL": None, "MAIL_CATCHER_DIR": str(tmp_path / "caught")})
    sender = mail.sender(app)
    assert isinstance(sender, mail.CatcherSender)
    assert sender.directory == tmp_path / "caught"
    assert mail.catcher_in_use(app.config)


def test_the_catcher_dir_defaults_to_the_instance_folder(app_config, tmp_path):
    app = create_app(app_config | {"SMTP_URL": None})
    assert mail.sender(app).directory == tmp_path / "instance" / "mail"


def test_dev_stack_smtp_still_counts_as_the_catcher(app_config):
    app = create_app(app_config | {"MAIL_CATCHER": 1})
    assert isinstance(mail.sender(app), mail.SmtpSender)
    assert mail.catcher_in_use(app.config)


# ---------------------------------------------------------------- SmtpSender

def test_send(smtp_server):
    with smtp_sender(smtp_server) as sender:
        sender.send(message(subject="First edition"))
    [got] = smtp_server.to("reader@example.org")
    assert got["Subject"] == "First edition"
    assert got.get_body(("html",)).get_content().strip() == "<p>Plain <b>words</b>.</p>"


def test_many_messages_over_one_connection(smtp_server):
    with smtp_sender(smtp_server) as sender:
        for n in range(25):
            sender.send(message(to=f"reader{n}@example.org", subject=f"n{n}"))
    assert len(smtp_server.messages) == 25
    assert len(set(smtp_server.peers)) == 1


def test_a_new_with_block_is_a_new_connection(smtp_server):
    for _ in range(2):
        with smtp_sender(smtp_server) as sender:
            sender.send(message())
    assert len(set(smtp_server.peers)) == 2


def test_4xx_is_transient_and_the_connection_goes_on(smtp_server):
    smtp_server.fault = lambda rcpt: "451 4.3.0 try later" if rcpt.startswith("busy@") else None
    with smtp_sender(smtp_server) as sender:
        with pytest.raises(mail.TransientSendError) as caught:
            sender.send(message(to="busy@example.org"))
        sender.send(message(to="fine@example.org"))
    assert caught.value.recipients == {"busy@example.org": (451, "4.3.0 try later")}
    assert not isinstance(caught.value, mail.PermanentSendError)
    assert smtp_server.to("fine@example.org") and not smtp_server.to("busy@example.org")
    assert len(set(smtp_server.peers)) == 1


def test_5xx_is_permanent(smtp_server):
    smtp_server.fault = lambda rcpt: "550 5.1.1 no such user"
    with smtp_sender(smtp_server) as sender, pytest.raises(mail.PermanentSendError) as caught:
        sender.send(message(to="gone@example.org"))
    assert caught.value.recipients == {"gone@example.org": (550, "5.1.1 no such user")}


def test_refusals_are_told_per_recipient(smtp_server):
    smtp_server.fault = lambda rcpt: "550 no such user" if rcpt.startswith("gone@") else None
    with smtp_sender(smtp_server) as sender, pytest.raises(mail.PermanentSendError) as caught:
        sender.send(message(to="gone@example.org, here@example.org"))
    assert set(caught.value.recipients) == {"gone@example.org"}
    assert smtp_server.to("here@example.org")


def test_mixed_refusals_are_transient(smtp_server):
    codes = {"gone@example.org": "550 no such user", "busy@example.org": "452 mailbox full"}
    smtp_server.fault = codes.get
    with smtp_sender(smtp_server) as sender, pytest.raises(mail.TransientSendError) as caught:
        sender.send(message(to="gone@example.org, busy@example.org"))
    assert {a: c for a, (c, _) in caught.value.recipients.items()} == {
        "gone@example.org": 550, "busy@example.org": 452}


def test_a_dropped_connection_is_transient(smtp_server):
    with smtp_sender(smtp_server) as sender:
        sender.send(message())
        smtp_server.stop()
        with pytest.raises(mail.TransientSendError):
            sender.send(message())


def test_no_server_is_a_transient_connect_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once the socket closes
    with mail.SmtpSender(smtp_url.parse_smtp_url(f"smtp://127.0.0.1:{port}")) as sender:
        with pytest.raises(mail.SmtpConnectError):
            sender.send(message())


def test_a_server_that_never_answers_times_out():
    with socket.socket() as listener:  # accepts connections (backlog), never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"smtp://127.0.0.1:{listener.getsockname()[1]}?timeout=0.3"
        with mail.SmtpSender(smtp_url.parse_smtp_url(url)) as sender:
            with pytest.raises(mail.TransientSendError, match="timed out"):
                sender.send(message())


def test_starttls_against_a_server_without_it_is_a_connect_error(smtp_server):
    with smtp_sender(smtp_server, "?starttls=1") as sender, pytest.raises(mail.SmtpConnectError):
        sender.send(message())
    assert not smtp_server.messages


def test_after_a_421_the_next_message_reconnects(smtp_server):
    answers = iter(["421 4.3.2 shutting down"])
    smtp_server.fault = lambda rcpt: next(answers, None)
    with smtp_sender(smtp_server) as sender:
        with pytest.raises(mail.TransientSendError):
            sender.send(message(to="first@example.org"))
        sender.send(message(to="later@example.org"))
    assert smtp_server.to("later@example.org") and not smtp_server.to("first@example.org")


# ---------------------------------------------------------------- CatcherSender

def test_the_catcher_keeps_each_message_as_a_file(tmp_path):
    with mail.CatcherSender(tmp_path) as sender:
        for n in range(3):
            sender.send(message(subject=f"n{n}"))
    files = sorted(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".eml"] * 3
    subjects = [m.subject for m in mailcatcher.list_messages(tmp_path)]
    assert subjects == ["n2", "n1", "n0"]  # newest first: the names sort by time


def test_the_catcher_reads_back_what_was_sent(tmp_path):
    with mail.CatcherSender(tmp_path) as sender:
        sender.send(message(to="Ann Reader <ann@example.org>", subject="Morning édition",
                            Bcc="hidden@example.org"))
    [summary] = mailcatcher.list_messages(tmp_path)
    caught = mailcatcher.read_message(tmp_path, summary.id)
    assert caught.subject == "Morning édition"
    assert caught.to == "Ann Reader <ann@example.org>"
    assert caught.mail_from == "Daily Edition <daily@localhost>"
    assert caught.text == "Plain words.\n"
    assert caught.html.strip() == "<p>Plain <b>words</b>.</p>"
    headers = dict(caught.headers)
    assert "Bcc" not in headers  # as an SMTP server would receive it
    assert headers["X-Catcher-Rcpt-To"] == "ann@example.org, hidden@example.org"
    assert headers["X-Catcher-Mail-From"] == "daily@localhost"


def test_the_catcher_refuses_a_message_without_recipients(tmp_path):
    msg = message()
    del msg["To"]
    with mail.CatcherSender(tmp_path) as sender, pytest.raises(mail.PermanentSendError):
        sender.send(msg)
    assert not list(tmp_path.iterdir())


def test_store_writes_atomically(tmp_path):
    message_id = mail.store_message(tmp_path, b"Subject: x\n\nbody\n", "a@example.org", ["b@example.org"])
    assert [p.name for p in tmp_path.iterdir()] == [f"{message_id}.eml"]  # no temporary left
    data = (tmp_path / f"{message_id}.eml").read_bytes()
    assert data.startswith(b"X-Catcher-Mail-From: a@example.org\nX-Catcher-Rcpt-To: b@example.org\n")
