"""Forms of the sign-up and subscription pages, and the JSON sign-up's validation.

Both sign-up routes check the same things with the same words: the address goes
through newsletter.addresses.normalise, the consent box must be ticked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, StringField
from wtforms.validators import AnyOf, DataRequired, NumberRange, Optional, ValidationError

from newsletter import addresses

CONSENT_MISSING = "Tick the box to agree to the newsletter terms."
ADDRESS_MISSING = "Enter your email address."
PAUSE_DAYS = (7, 30, 90)  # the choices the unsubscribe page offers
# The queue did not take a sign-up (503): nothing was stored, the reader sends it again.
SIGNUP_NOT_TAKEN = "We could not take your sign-up just now. Please try again in a minute."
SIGNUP_RETRY_AFTER = 30  # seconds


class Form(FlaskForm):
    class Meta:
        # CSRFProtect (newsletter.web) checks every POST before any view runs, exempt
        # routes aside; the forms need not check again.
        csrf = False


class SignupForm(Form):
    """The Daily Edition box: the same fields inline, on /newsletter and in the API."""

    email = StringField("Email address")
    consent = BooleanField("Consent", validators=[DataRequired(CONSENT_MISSING)])
    # The honeypot: hidden from people; a filled one is answered like a success.
    website = StringField("Leave this field empty")
    article = HiddenField()
    page = HiddenField()

    address: str | None = None  # the normalised address, once validated

    def validate_email(self, field) -> None:
        self.address = normalised_address(field.data)

    @property
    def is_bot(self) -> bool:
        return bool(self.website.data)


def normalised_address(raw: Any) -> str:
    """`raw` normalised, or a ValidationError with the words the reader sees."""
    if raw is None or raw == "":
        raise ValidationError(ADDRESS_MISSING)
    if not isinstance(raw, str):  # JSON numbers, lists…
        raise ValidationError("The email address must be a string.")
    try:
        return addresses.normalise(raw)
    except addresses.InvalidEmail as error:
        raise ValidationError(str(error)) from error


class FieldError(ValueError):
    """A JSON sign-up that cannot be taken; `field` names the culprit (None: the body)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class JsonSignup:
    address: str
    article: Any
    page: Any


def json_signup(body: Any) -> JsonSignup:
    """Check a JSON sign-up `{"email", "consent": true, "article"?, "page"?}`."""
    if not isinstance(body, dict):
        raise FieldError(None, "Send a JSON object with email and consent.")
    try:
        address = normalised_address(body.get("email"))
    except ValidationError as error:
        raise FieldError("email", str(error)) from error
    if body.get("consent") is not True:
        raise FieldError("consent", CONSENT_MISSING)
    return JsonSignup(address, body.get("article"), body.get("page"))


class PreferencesForm(Form):
    """A button on the unsubscribe or manage page: `action`, and `days` for a pause."""

    action = StringField(validators=[AnyOf(("unsubscribe", "pause", "resume", "resubscribe"))])
    days = IntegerField("Days", validators=[Optional(), NumberRange(1, 365)])

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        # Not an inline validator: Optional() would stop the chain before it ran.
        if self.action.data == "pause" and self.days.data is None:
            self.days.errors.append("Choose how many days to pause for.")
            return False
        return True


class EraseForm(Form):
    confirm = BooleanField("Yes, erase my data",
                           validators=[DataRequired("Tick the box to confirm the erasure.")])
