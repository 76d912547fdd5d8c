"""The `prompt_claim` cookie: what a counted reader's next page views get, as Redis answered it.

Signed with SECRET_KEY: "reader <rid>'s next <views> page views on the prompts in play
<fingerprint> get <nothing, or the prompt in play at index shown> before <time>", with the
count of stories for the prompt's copy and, after the last view, until when nothing
(newsletter.prompt_claims). While it holds, a page view makes no round trip.
"""
from __future__ import annotations

from functools import lru_cache

from flask import Flask, Response
from itsdangerous import BadSignature, Signer
from werkzeug.http import dump_cookie

from newsletter import prompt_claims
from newsletter.prompt_scripts import DECIDE_SCRIPT_ID
from newsletter.prompts import ReaderContext
from newsletter.web.requestinfo import cookie

COOKIE = "prompt_claim"
MOST_SECONDS = 31 * 86400  # a claim holds no longer than a month's cap window
LONGEST_VALUE = 160  # a claim is about 115 characters; longer values are not looked at


def give(response: Response, held: str, seconds: int, secure: bool) -> Response:
    """Set the claim for `seconds`. Max-Age alone (every browser since IE 11 reads it): working
    out Expires, a date, cost more than the rest of a claimed page view's cookie."""
    response.headers.add("Set-Cookie", dump_cookie(COOKIE, held, max_age=seconds, secure=secure, httponly=True,
                                                   samesite="Lax", sync_expires=False))
    return response


def drop(response: Response) -> Response:
    response.delete_cookie(COOKIE, httponly=True, samesite="Lax")
    return response


def _signer(app: Flask) -> Signer:
    """Signs claims. The salt names the decision script: a release that changes how claims are
    worked out voids the ones given before it."""
    signer = app.extensions.get("newsletter.claim_signer")
    if signer is None:
        signer = app.extensions["newsletter.claim_signer"] = Signer(
            app.config["SECRET_KEY"], salt=f"prompt-claim:{DECIDE_SCRIPT_ID}")
    return signer


def claimed(app: Flask, cookies, reader_id: str) -> prompt_claims.Claim | None:
    """The claim this request brings for this reader (None: none, or not ours)."""
    held = cookie(cookies, COOKIE)
    claim = _verified(_signer(app), held) if 0 < len(held) <= LONGEST_VALUE else None
    return claim[1] if claim is not None and claim[0] == reader_id else None


@lru_cache(maxsize=16_384)
def _verified(signer: Signer, value: str) -> tuple[str, prompt_claims.Claim] | None:
    """A claim's reader id and what it says, once per claim and process (a reader brings the
    same one back on every page view while it holds); None if not ours."""
    try:
        claimant, fingerprint, until_ms, views, shown, articles_read, then_ms = \
            signer.unsign(value).decode().split(".")
        return claimant, prompt_claims.Claim(fingerprint, int(until_ms) / 1000, int(views) if views else None,
                                             int(shown), int(articles_read), int(then_ms) / 1000)
    except (BadSignature, ValueError):  # forged, altered, or from another SECRET_KEY
        return None


def value(app: Flask, reader: ReaderContext, counted: prompt_claims.Counted, moment: float) -> tuple[str | None, int]:
    """The claim cookie's value and seconds after this decision: None when the one the request
    brought stays, '' when it goes."""
    claim = counted.claim
    if not reader.counted or not counted.changed:
        return None, 0
    if claim is None:
        return "", 0
    until = min(claim.until, moment + MOST_SECONDS)
    # Milliseconds, rounded down: the claim may end a little early, never late.
    views = "" if claim.views is None else str(claim.views)
    payload = (f"{reader.id}.{claim.fingerprint}.{int(until * 1000)}.{views}.{claim.shown}.{claim.articles_read}."
               f"{int(min(claim.then, moment + MOST_SECONDS) * 1000)}")
    return _signer(app).sign(payload).decode(), max(1, int(until - moment))
