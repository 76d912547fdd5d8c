"""emails: templates rendered and inlined, messages built, list headers (RFC 8058)."""
from __future__ import annotations

import email
import re
from datetime import datetime, timezone
from email import policy
from email.utils import parsedate_to_datetime

import jinja2
import pytest

from newsletter import emails, mail, smtp_url
from newsletter.addresses import email_hash
from newsletter.emails import MailSettings, RenderedMail, build_message, list_headers, render
from newsletter.models import Subscriber

UNSUBSCRIBE = "https://news.example.org/newsletter/unsubscribe/7.0123456789abcdef0123456789abcdef"
MANAGE = "https://news.example.org/newsletter/manage/7.fedcba9876543210fedcba9876543210"
CONFIRM = "https://news.example.org/newsletter/confirm/Abc_-123xyzAbc_-123xyzAbc_-123xyz"


def reader(address="reader@example.org") -> Subscriber:
    return Subscriber(id=7, email=address, email_hash=email_hash(address), token_key="k" * 32)


def contexts(publication="The Daily Edition") -> dict[str, dict]:
    base = {"publication": publication}
    return {
        "confirm": base | emails.confirmation(reader(), CONFIRM, 48),
        "welcome": base | emails.welcome(reader(), UNSUBSCRIBE, MANAGE),
        "already_subscribed": base | emails.already_subscribed(reader(), UNSUBSCRIBE, MANAGE),
    }


def reparse(msg) -> email.message.EmailMessage:
    return email.message_from_bytes(msg.as_bytes(), policy=policy.default)


# ---------------------------------------------------------------- the mails' contexts

def test_each_mail_is_a_function_returning_its_context():
    assert emails.confirmation(reader(), CONFIRM, 48) == {
        "email": "reader@example.org", "confirm_url": CONFIRM, "expires_hours": 48}
    for fn in (emails.welcome, emails.already_subscribed):
        assert fn(reader(), UNSUBSCRIBE, MANAGE) == {
            "email": "reader@example.org", "unsubscribe_url": UNSUBSCRIBE, "manage_url": MANAGE}


# ---------------------------------------------------------------- rendering

@pytest.mark.parametrize("name", ["confirm", "welcome", "already_subscribed"])
def test_every_mail_renders_subject_text_and_html(name):
    rendered = render(name, contexts()[name])
    assert isinstance(rendered, RenderedMail)
    assert rendered.subject and "\n" not in rendered.subject and "The Daily Edition" in rendered.subject
    assert rendered.text.startswith("The Daily Edition\n=================\n")
    assert "reader@example.org" in rendered.text and "reader@example.org" in rendered.html
    assert rendered.html.lstrip().lower().startswith("<!doctype html>")
    assert '<html lang="en"' in rendered.html
    assert "{{" not in rendered.text + rendered.html and "{%" not in rendered.text + rendered.html


def test_the_confirmation_mail_carries_its_link_and_expiry():
    rendered = render("confirm", contexts()["confirm"])
    assert rendered.subject == "Confirm your subscription to The Daily Edition"
    assert CONFIRM in rendered.text and f'href="{CONFIRM}"' in rendered.html
    assert "48 hours" in rendered.text and "48 hours" in rendered.html
    assert UNSUBSCRIBE not in rendered.text  # not list mail: no way out is needed


@pytest.mark.parametrize("name", ["welcome", "already_subscribed"])
def test_list_mails_show_unsubscribe_and_manage_links(name):
    rendered = render(name, contexts()[name])
    for url in (UNSUBSCRIBE, MANAGE):
        assert url in rendered.text and f'href="{url}"' in rendered.html


def test_css_is_inlined_and_dark_mode_rules_are_kept():
    html = render("confirm", contexts()["confirm"]).html
    button = re.search(r'<a class="button"[^>]*>', html)[0]
    assert "background-color: #a3231f" in button and "color: #ffffff" in button
    assert "@media (prefers-color-scheme: dark)" in html
    style = re.search(r"<style>(.*?)</style>", html, re.S)[1]
    assert style.strip().startswith("@media")  # only the @media rules stay in <style>
    assert "margin: 0 0 16px" not in style and "border-radius" not in style


def test_no_remote_assets():
    for name, context in contexts().items():
        html = render(name, context).html
        assert not re.search(r"<(img|link|script|iframe)\b", html, re.I)
        assert "@import" not in html and "url(" not in html


def test_only_the_html_is_autoescaped():
    rendered = render("welcome", contexts('Tom & Jerry <Gazette>')["welcome"])
    assert "Tom &amp; Jerry &lt;Gazette&gt;" in rendered.html
    assert "Tom & Jerry <Gazette>" in rendered.text and "Tom & Jerry <Gazette>" in rendered.subject


def test_a_missing_value_is_an_error_not_a_blank():
    context = contexts()["confirm"]
    del context["confirm_url"]
    with pytest.raises(jinja2.UndefinedError):
        render("confirm", context)


# ---------------------------------------------------------------- building

def built(headers=None, to="reader@example.org", mail_from="Daily Edition <daily@news.example.org>"):
    rendered = render("welcome", contexts()["welcome"])
    return build_message(rendered, to, mail_from, headers,
                         now=datetime(2026, 11, 25, 7, 0, tzinfo=timezone.utc))


def test_the_message_is_text_then_html():
    msg = reparse(built())
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert msg.get_body(("plain",)).get_content().startswith("The Daily Edition")
    assert "style=" in msg.get_body(("html",)).get_content()


def test_the_message_has_from_to_subject_date_and_a_message_id_on_the_from_domain():
    msg = reparse(built())
    assert msg["From"] == "Daily Edition <daily@news.example.org>"
    assert msg["To"] == "reader@example.org"
    assert msg["Subject"] == "Welcome to The Daily Edition"
    assert parsedate_to_datetime(msg["Date"]) == datetime(2026, 11, 25, 7, 0, tzinfo=timezone.utc)
    assert re.fullmatch(r"<[^@<>\s]+@news\.example\.org>", msg["Message-ID"])
    assert reparse(built())["Message-ID"] != msg["Message-ID"]


def test_an_idn_domain_goes_out_as_punycode():
    assert reparse(built(to="user@bücher.example"))["To"] == "user@xn--bcher-kva.example"


def test_a_unicode_mailbox_needs_smtputf8():
    msg = built(to="josé@bücher.example")
    data = msg.as_bytes(policy=msg.policy.clone(utf8=True))
    assert "To: josé@bücher.example".encode() in data


def test_extra_headers_are_added():
    msg = reparse(built({"X-Campaign": "welcome"}))
    assert msg["X-Campaign"] == "welcome"


# ---------------------------------------------------------------- list headers

def test_list_headers_offer_one_click_by_url_and_a_mailto():
    headers = list_headers(UNSUBSCRIBE, "Daily Edition <daily@news.example.org>")
    assert headers == {
        "List-Id": "<daily-edition.news.example.org>",
        "List-Unsubscribe": f"<{UNSUBSCRIBE}>, <mailto:daily@news.example.org?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_list_headers_take_a_bare_address_and_an_explicit_list_id():
    headers = list_headers("http://127.0.0.1:5000/newsletter/unsubscribe/1.ab", "leave@example.org",
                           list_id="Daily <daily.example.org>")
    assert headers["List-Unsubscribe"] == (
        "<http://127.0.0.1:5000/newsletter/unsubscribe/1.ab>, <mailto:leave@example.org?subject=unsubscribe>")
    assert headers["List-Id"] == "Daily <daily.example.org>"


def test_list_headers_survive_serialisation_unchanged():
    headers = list_headers(UNSUBSCRIBE, "daily@news.example.org")
    msg = reparse(built(headers))
    for name, value in headers.items():
        assert " ".join(str(msg[name]).split()) == value
    raw = built(headers).as_bytes()
    assert b"=?" not in raw.split(b"\n\n", 1)[0]  # no encoded words in the header block


def test_list_mail_reaches_a_real_smtp_server_intact(smtp_server):
    headers = list_headers(UNSUBSCRIBE, "daily@news.example.org")
    with mail.SmtpSender(smtp_url.parse_smtp_url(smtp_server.url)) as sender:
        sender.send(built(headers))
    [got] = smtp_server.wait_for("reader@example.org")
    assert str(got["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert UNSUBSCRIBE in str(got["List-Unsubscribe"]) and "mailto:" in str(got["List-Unsubscribe"])
    assert got.get_body(("html",)) is not None and got.get_body(("plain",)) is not None


# ---------------------------------------------------------------- settings and compose

def test_settings_from_the_app_configuration(app):
    settings = MailSettings.from_config(app.config)
    assert settings == MailSettings(
        base_url="http://newsletter.test", mail_from="Daily Edition <daily@localhost>",
        secret_key="test-secret-key", publication="The Daily Edition", unsubscribe_mailto="",
        confirm_hours=48, mails_per_hour=3)


def test_settings_take_the_optional_keys(app):
    config = dict(app.config) | {"CONFIRM_TOKEN_HOURS": "12", "SIGNUP_MAILS_PER_HOUR": 5,
                                 "LIST_UNSUBSCRIBE_MAILTO": "leave@example.org"}
    settings = MailSettings.from_config(config)
    assert (settings.confirm_hours, settings.mails_per_hour, settings.unsubscribe_mailto) == (
        12, 5, "leave@example.org")


def test_compose_adds_the_publication_name():
    settings = MailSettings(base_url="https://x.example", mail_from="Gazette <g@x.example>",
                            secret_key="s", publication="The Riverside Gazette")
    msg = emails.compose("confirm", emails.confirmation(reader(), CONFIRM, 24), settings,
                         "reader@example.org")
    assert msg["Subject"] == "Confirm your subscription to The Riverside Gazette"
    assert "24 hours" in msg.get_body(("plain",)).get_content()
