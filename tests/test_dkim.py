"""DKIM signing: signatures that verify, cover the List-Unsubscribe headers, and break when
a signed header changes; the configuration's forms and mistakes."""
from __future__ import annotations

import email
from datetime import date
from email import policy

import dkim as dkimpy
import pytest

from newsletter import edition_render, editions
from newsletter.dkim import DkimConfigError, make_signer, signer_from_config
from tests.factories import make_article, paragraph

# A key made for these tests only (openssl genrsa 2048), and its public half as DNS holds it.
PRIVATE_KEY = """\
-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAuHlSCCnfok4XKO23y7VqPS8YkI/ukVH0XG4L1y0t1ntOSR1K
cUlGrjYKa6xcMj9llJan0i5TQ0TguXtz1rC1eNbITrSuQw+yoce3za54Lh7LOsAq
/R9ETW/0uOo6yCTPvc54gWLoWlAb7gcAWttrJHJZxoopyPPuosyw2AFIs37b6OzS
SLY975UMhnHTWm26VSEw4ve7C+r+0Qyco+YA2BiB14Tvnb7gnWjN9QAnJ+46+494
qYbdtT2OMyxweHgdsF2kgRgdGoDZ+8J89ciRoHVvfZ2tU9jA6TeDP7ZxQmRwg+BR
9093GCu8f9+O2GRn/opc7LMVwc7UQtYT1mVEIQIDAQABAoIBADhTXs88TdrGYj7u
eoiaD2K4HxWAxRSdA/I27amZU14iTzB235SAjbLCsGLZAVucTN1WNM6xs12eScmI
nsGGOhq35fhWJcE3KVFJZF9KbsqSP3ZkV5vq8JV+YigV6LXUu5OWV+gVtaFhxW1j
uOGFDo1V1wCOjhycEpilzDdgCP048WThpFMY6oUZizyEhhr1kO1JqaMDdBRZ8OJI
BCFd7eW3euBC0pR28ax8BJ3G9JGZzyVB5mcnl6HgTK5ZeEouy/Z98kO1++GDZXrk
pkPTmof15DVkBAcj3SC675Qs6CmOEJ7u5GOxODRQJHbZgDCfagxdqW4ws+ckda/b
macKfMsCgYEA5sr9sXRNc9vcFxAufuAUbvgl+2O34f2GV6DXt+52ZZpK7rVMO1lq
IXItV+8NadL72cAHRDuCrZP3BGmf96s41/joVjUkSXKWOumy2EOIM+uv13pWBBnj
U7DH7O890IINdnUd+/6BOFCVnF1W1BY5gkLJsb5OOXieQZxd79vDVy8CgYEAzJ89
4zBJoTv5yngnMIkQtpD/ZLIVFct6RvEMJd3N7YuOR15nq5vMZOgirDl/cSw1SRjf
3MG1x9vVn70ZUvub4YxE7mCFV8JoZ69J9aIgjq81L/ys/CGbqmCmmCYUsf2ix/jT
KuviDpSdEZhuWWms0uRHb4wXHVDuclFM/RkzRa8CgYBkm462AcYVwH0UDLjIFDS0
HzanfNPXDya2ImaHRsuUBQuvPZcqtBLA274KfCozvIaPaNeCFhMkScE/yi+yzpAs
DdRyaB4Wan401lVhUycXwyFXZHwEs6hWflTY433l3Bu0TN+yT0LTYsWlcUb9k2ak
cyrrcdM12G/cmCaW/g0MfwKBgAva6gYApTNvOyCs53BbcJlzOyjFXI1ftZzomFCV
UjoCDOM7p/v8UdJC1MdvqV+QNSIgC9BJdNO4e97+YLo7E6P0sYWyF+emvs/LCxjt
JL+/jPBTzl3pQJCVevFzu104mbbGRs3EztsTZyo+z53kjnvFeBIRZsFvD/GVnkVH
sX3HAoGBAODvEKI2Fcc5PZSlE36ab1ZrEUR5ll3lzDUJxnDO67Mrk5Io1S1Nydh0
nAPrMpBfRNY8WI5VdpW5BefkVs+tlmfvasiHQ8gdT6PEwVBOTB5WCgJIBBx+iXLl
pFc4E9DlEcr3fietaHsampHk6Ee2W+e0iPkcaKGs3cD700pKHMKG
-----END RSA PRIVATE KEY-----
"""
PUBLIC_KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuHlSCCnfok4XKO23y7VqPS8YkI/ukVH0XG4L1y0t1ntOSR1KcUlGrjYKa6xcMj9llJan0i5TQ0TguXtz1rC1eNbITrSuQw+yoce3za54Lh7LOsAq/R9ETW/0uOo6yCTPvc54gWLoWlAb7gcAWttrJHJZxoopyPPuosyw2AFIs37b6OzSSLY975UMhnHTWm26VSEw4ve7C+r+0Qyco+YA2BiB14Tvnb7gnWjN9QAnJ+46+494qYbdtT2OMyxweHgdsF2kgRgdGoDZ+8J89ciRoHVvfZ2tU9jA6TeDP7ZxQmRwg+BR9093GCu8f9+O2GRn/opc7LMVwc7UQtYT1mVEIQIDAQAB"
SELECTOR, DOMAIN = "edition2026", "news.example.org"
DNS_NAME = f"{SELECTOR}._domainkey.{DOMAIN}."


def dns(name: bytes, timeout: int = 5) -> bytes | None:
    """The DNS TXT record a receiver would look up, for our selector only."""
    if name.decode() == DNS_NAME:
        return f"v=DKIM1; k=rsa; p={PUBLIC_KEY}".encode()
    return None


def verifies(message: bytes) -> bool:
    return dkimpy.verify(message, dnsfunc=dns)


def signature_tags(message: bytes) -> dict[str, str]:
    value = email.message_from_bytes(message, policy=policy.compat32)["DKIM-Signature"]
    tags = (t.split("=", 1) for t in "".join(value.split()).split(";") if t)
    return {k: v for k, v in tags}


@pytest.fixture
def signer():
    return make_signer(PRIVATE_KEY, SELECTOR, DOMAIN)


@pytest.fixture
def signed(session, signer):
    make_article(session, slug="talks", headline="Talks end in a deal — at last",
                 body=[paragraph("Negotiators agreed on Tuesday.")])
    edition = editions.create_edition(session, day=date(2026, 11, 25), slugs=["talks"], count=8, tz="UTC")
    session.commit()
    prepared = edition_render.prepare(
        session, edition.id, base_url="https://news.example.org", list_id=None, dkim=signer,
        mail_from="The Daily Edition <daily@news.example.org>", publication="The Daily Edition",
        secret_key="s")
    return prepared.message_bytes(
        to="zoe@example.org", name="Zoë Åström", message_id="<e1.s7@news.example.org>",
        unsubscribe_url="https://news.example.org/newsletter/unsubscribe/7.0123456789abcdef0123456789abcdef",
        manage_url="https://news.example.org/newsletter/manage/7.0123456789abcdef0123456789abcdef")


def test_an_edition_is_signed_and_verifies(signed):
    assert signed.startswith(b"DKIM-Signature: ")
    assert verifies(signed)
    msg = email.message_from_bytes(signed, policy=policy.default)
    assert msg["To"].addresses[0].display_name == "Zoë Åström"
    assert msg.get_body(("plain",)).get_content().count("Negotiators agreed on Tuesday.") == 1


def test_the_signature_covers_the_list_headers(signed):
    tags = signature_tags(signed)
    signed_headers = tags["h"].split(":")
    for name in ("from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe",
                 "list-unsubscribe-post"):
        assert name in signed_headers
    assert (tags["d"], tags["s"], tags["a"], tags["c"]) == (DOMAIN, SELECTOR, "rsa-sha256", "relaxed/relaxed")


@pytest.mark.parametrize("old, new", [
    (b"/newsletter/unsubscribe/7.0123", b"/newsletter/unsubscribe/8.0123"),   # List-Unsubscribe and body
    (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nothing"),
    (b"Message-ID: <e1.s7@", b"Message-ID: <e1.s8@"),
    (b"Negotiators agreed", b"Negotiators denied"),
])
def test_a_change_breaks_the_signature(signed, old, new):
    assert old in signed
    assert not verifies(signed.replace(old, new, 1))


def test_an_added_reply_to_breaks_the_signature(signed):
    # Over-signed: Reply-To is in h= though the message has none.
    assert not verifies(signed.replace(b"\r\nTo: ", b"\r\nReply-To: evil@example.com\r\nTo: ", 1))


def test_no_key_no_signer():
    assert signer_from_config({"MAIL_FROM": "daily@news.example.org"}) is None
    assert signer_from_config({"MAIL_FROM": "daily@news.example.org", "DKIM_PRIVATE_KEY": ""}) is None


def test_the_key_from_a_file_and_the_domain_from_mail_from(tmp_path):
    path = tmp_path / "dkim.pem"
    path.write_text(PRIVATE_KEY)
    signer = signer_from_config({"MAIL_FROM": "The Daily Edition <daily@news.example.org>",
                                 "DKIM_PRIVATE_KEY": str(path), "DKIM_SELECTOR": SELECTOR})
    assert (signer.domain, signer.selector) == (DOMAIN, SELECTOR)
    message = b"From: daily@news.example.org\r\nTo: a@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
    assert verifies(signer.sign(message))
    assert "PRIVATE" not in repr(signer)


@pytest.mark.parametrize("key, selector, error", [
    (PRIVATE_KEY, None, "DKIM_SELECTOR"),
    ("/nonexistent/dkim.pem", SELECTOR, "cannot read"),
    ("-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n", SELECTOR, "cannot sign"),
])
def test_configuration_mistakes_fail_at_once(key, selector, error):
    with pytest.raises(DkimConfigError, match=error):
        make_signer(key, selector, DOMAIN)
