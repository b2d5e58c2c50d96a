"""Domain errors: services raise them, app.py turns them into pages, partials or JSON.

Also the small checks services share on the values a request sends.
"""

import math


class LoupeError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict | list | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class NotFound(LoupeError):
    status, code = 404, "not_found"


class Forbidden(LoupeError):
    status, code = 403, "forbidden"


class Unauthorized(LoupeError):
    status, code = 401, "unauthorized"


class Invalid(LoupeError):
    status, code = 422, "invalid"


class BadJson(LoupeError):
    status, code = 400, "invalid_json"


class Conflict(LoupeError):
    status, code = 409, "conflict"


class Gone(LoupeError):
    """Was here and will not be again (an expired export or download link)."""

    status, code = 410, "gone"


class TooMany(LoupeError):
    status, code = 429, "too_many_requests"


class Unavailable(LoupeError):
    status, code = 503, "unavailable"


def parse_choice(enum_class, value, field: str, what: str):
    """The enum member named by `value`, or Invalid listing the allowed values."""
    try:
        return enum_class(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum_class)
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"  # a request may send megabytes
        raise Invalid(f"Unknown {what} {shown}; use one of {allowed}", details={"field": field}) from None


# What a form or query value may say for a flag (an unticked form field sends nothing, or "").
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


def parse_flag(value, field: str) -> bool:
    """True or false from JSON (a bool) or a form or query value ("true", "1", "on", ...), or
    Invalid naming the field."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    raise Invalid(f"{field} must be true or false", details={"field": field})


# What an id or count column holds: BIGINT, and INTEGER for the ids of most tables on PostgreSQL
# (models.base.BigId is the exception). A wider number fails the query instead of matching nothing.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1


def parse_int(text: str, limit: int = INT64_MAX) -> int:
    """A whole number from a query or form value, as int() reads it; ValueError also beyond ±limit,
    checked before int() (which itself raises past 4,300 digits), so callers keep one except."""
    digits = text.strip().lstrip("+-").lstrip("0")
    if len(digits) > len(str(limit)) or abs(value := int(text)) > limit:
        raise ValueError(f"{text[:24]!r} is out of range")
    return value


# JSON values as a request sends them: Python's bool is an int, JSON's true is not a number.


def is_int(value, limit: int = INT32_MAX) -> bool:
    """A JSON integer within ±limit: by default what an INTEGER column holds (a label or dataset id,
    a position, a revision number); pass INT64_MAX for image ids."""
    return isinstance(value, int) and not isinstance(value, bool) and -limit - 1 <= value <= limit


def is_id_list(value, limit: int = INT32_MAX) -> bool:
    """A list of integer ids (possibly empty), each within ±limit as is_int checks it."""
    return isinstance(value, list) and all(is_int(item, limit) for item in value)


def is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
