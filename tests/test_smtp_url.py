"""NEWSLETTER_SMTP_URL read into settings: ports, credentials, options, clear errors."""
from __future__ import annotations

import pytest

from newsletter import smtp_url


def test_plain_url():
    s = smtp_url.parse_smtp_url("smtp://mail.example.org:2525")
    assert (s.host, s.port, s.username, s.password) == ("mail.example.org", 2525, None, None)
    assert not s.starttls and not s.implicit_tls
    assert s.timeout == smtp_url.DEFAULT_TIMEOUT


def test_credentials_are_percent_decoded():
    s = smtp_url.parse_smtp_url("smtp://news%40paper:p%3As%40ss%2Fw%20rd@mail.example.org:587?starttls=1")
    assert (s.username, s.password) == ("news@paper", "p:s@ss/w rd")
    assert s.starttls and s.port == 587


def test_smtps_and_default_ports():
    s = smtp_url.parse_smtp_url("smtps://u:p@mail.example.org")
    assert s.implicit_tls and not s.starttls and s.port == 465
    assert smtp_url.parse_smtp_url("smtp://mail.example.org").port == 25


def test_ipv6_host_and_timeout():
    s = smtp_url.parse_smtp_url("smtp://[::1]:2525?timeout=2.5&starttls=0")
    assert (s.host, s.port, s.timeout, s.starttls) == ("::1", 2525, 2.5, False)


@pytest.mark.parametrize("url, complaint", [
    ("http://mail.example.org", "smtp:// or smtps://"),
    ("mail.example.org:25", "smtp:// or smtps://"),
    ("smtp://", "no host"),
    ("smtp://mail.example.org:99999", "port"),
    ("smtp://mail.example.org:0", "port"),
    ("smtp://mail.example.org:twenty", "port"),
    ("smtp://mail.example.org/inbox", "path"),
    ("smtp://mail.example.org?starttls=maybe", "starttls=maybe"),
    ("smtp://mail.example.org?timeout=-1", "timeout=-1"),
    ("smtp://mail.example.org?tls=1", "tls=1"),
    ("smtps://mail.example.org?starttls=1", "TLS from the start"),
    ("smtp://user@mail.example.org", "needs a password"),
])
def test_bad_urls_say_what_is_wrong(url, complaint):
    with pytest.raises(smtp_url.InvalidSmtpUrl, match=complaint):
        smtp_url.parse_smtp_url(url)


def test_errors_never_show_the_password():
    with pytest.raises(smtp_url.InvalidSmtpUrl) as caught:
        smtp_url.parse_smtp_url("smtp://user:hunter2@mail.example.org:http")
    assert "hunter2" not in str(caught.value)
    assert "user:***@" in str(caught.value)
