"""Stripe's error shapes: what the sandbox raises, and the JSON the API answers with."""
from __future__ import annotations


class StripeError(Exception):
    """An API error as Stripe reports it: an HTTP status and an `error` object."""

    def __init__(self, message: str, *, status: int = 400, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 decline_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code
        self.decline_code = decline_code

    def body(self) -> dict:
        error = {"type": self.type, "message": self.message}
        for key in ("param", "code", "decline_code"):
            if getattr(self, key) is not None:
                error[key] = getattr(self, key)
        return {"error": error}


class CardDeclined(StripeError):
    """The card was refused (Stripe's HTTP 402 card_error)."""

    def __init__(self, message: str = "Your card was declined.", *,
                 code: str = "card_declined", decline_code: str | None = "generic_decline",
                 param: str | None = None) -> None:
        super().__init__(message, status=402, type="card_error", code=code,
                         decline_code=decline_code, param=param)


def unknown_parameter(param: str) -> StripeError:
    return StripeError(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def missing_parameter(param: str) -> StripeError:
    return StripeError(f"Missing required param: {param}.", param=param, code="parameter_missing")


def invalid_value(param: str, message: str) -> StripeError:
    return StripeError(message, param=param, code="parameter_invalid_empty"
                       if message.startswith("You passed an empty string") else None)


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(f"No such {kind}: '{object_id}'", status=404, param=param,
                       code="resource_missing")


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(f"Unrecognized request URL ({method}: {path}). Please see "
                       "https://stripe.com/docs or we can help at https://support.stripe.com/.",
                       status=404)


def authentication_error(message: str) -> StripeError:
    return StripeError(message, status=401)


def idempotency_error(key: str) -> StripeError:
    return StripeError("Keys for idempotent requests can only be used with the same parameters "
                       f"they were first used with. Try using a key other than '{key}' if you "
                       "meant to execute a different request.", type="idempotency_error")
