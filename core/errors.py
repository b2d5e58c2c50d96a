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


class Conflict(LoupeError):
    status, code = 409, "conflict"


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
        raise Invalid(f"Unknown {what} {value!r}; use one of {allowed}", details={"field": field}) from None


# JSON values as a request sends them: Python's bool is an int, JSON's true is not a number.


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_id_list(value) -> bool:
    """A list of integer ids (possibly empty)."""
    return isinstance(value, list) and all(map(is_int, value))


def is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
