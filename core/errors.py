"""Domain errors: services raise them, app.py turns them into pages, partials or JSON."""


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
