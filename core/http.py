"""The HTTP edge, once for every route: ids in paths, JSON request bodies, security headers, and
the embedded launcher's server answering its 413 in Loupe's shape.

Whatever a client sends is bounded here, before a view or a service sees it, so that no value can
reach the database or Python's number parsing in a form that raises (OverflowError on SQLite,
"integer out of range" on PostgreSQL, ValueError past 4,300 digits, RecursionError on nesting).
"""

import json
import logging

import flask
import waitress
import waitress.utilities
from flask.json.provider import DefaultJSONProvider
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface
from htmx_flask.requests import HtmxAwareRequest
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask, WSGITask
from werkzeug.exceptions import NotFound, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter, Rule

from core.errors import INT32_MAX, INT64_MAX, INT64_MIN, BadJson, Invalid

# A request body nested deeper than this is not one Loupe reads (an annotation set is 5 deep), and
# nesting is what makes json.loads, and everything after it that walks the value, recurse.
MAX_JSON_DEPTH = 32
# A JSON body is parsed whole into memory, so it gets a far smaller limit than an upload (the app's
# MAX_CONTENT_LENGTH): a thousand-image bulk edit is a few kilobytes, an annotation set at most 2 MB.
MAX_JSON_BYTES = 16 * 1024 * 1024
# Per array: above every count a service accepts (10,000 points per polygon, 2,000 annotations),
# so a service still answers with its own limit, and a million-item list is refused unread.
MAX_JSON_ITEMS = 100_000


# Path arguments naming rows whose id is a BigId (64 bits on PostgreSQL).
WIDE_IDS = {"image_id"}


class IdConverter(IntegerConverter):
    """`<int:...>` as a database id: a number wider than the id column names nothing, so it is a 404."""

    limit = INT32_MAX  # PostgreSQL INTEGER, the narrowest id column; IdRule widens it for WIDE_IDS

    def to_python(self, value: str):
        # Checked on the digits first: int() raises ValueError past 4,300 of them. NotFound rather
        # than ValidationError: werkzeug answers a ValidationError with 405 when another method's
        # rule has the same path, which would send a client looking for a method that cannot help.
        if len(value.lstrip("0")) > len(str(INT64_MAX)) or int(value) > self.limit:
            raise NotFound()
        return super().to_python(value)


class IdRule(Rule):
    """A URL rule whose `<int:>` arguments are bounded by the width of the id they name."""

    def get_converter(self, variable_name, converter_name, args, kwargs):
        converter = super().get_converter(variable_name, converter_name, args, kwargs)
        if isinstance(converter, IdConverter) and variable_name in WIDE_IDS:
            converter.limit = INT64_MAX
        return converter


# ---- JSON request bodies -------------------------------------------------------------------


def _short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}…{text[-6:]} ({len(text)} characters)"


def _whole_number(text: str) -> int:
    if len(text.lstrip("-")) > len(str(INT64_MAX)) or not INT64_MIN <= (value := int(text)) <= INT64_MAX:
        raise Invalid(
            f"The number {_short(text)} in the request body is out of range: whole numbers go from {INT64_MIN} to {INT64_MAX}",
            code="out_of_range",
        )
    return value


def _finite_number(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise Invalid(f"The number {_short(text)} in the request body is larger than a float holds", code="out_of_range")
    return value


def _no_constant(name: str):
    raise Invalid(f"{name} in the request body is not a number JSON allows; send a finite number", code="out_of_range")


def _nul_refused(where: str) -> Invalid:
    # PostgreSQL cannot store NUL in text (DataError), and no name, tag or search means one.
    return Invalid(f"{where} contains the NUL character (\\u0000), which no text in Loupe may hold", code="nul_character")


def _check_shape(value, strings: bool = True) -> None:
    """Refuse values nested deeper than MAX_JSON_DEPTH, arrays longer than MAX_JSON_ITEMS and (with
    `strings`) text holding NUL (iteratively)."""
    kinds = (dict, list, str) if strings else (dict, list)
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise _nul_refused("Text in the request body")
            continue
        if depth > MAX_JSON_DEPTH:
            raise BadJson(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(node, list) and len(node) > MAX_JSON_ITEMS:
            raise Invalid(f"An array in the request body has {len(node):,} items; the limit is {MAX_JSON_ITEMS:,}", code="too_many_items")
        children = node if isinstance(node, list) else [*node.keys(), *node.values()] if strings else node.values()
        pending.extend((child, depth + 1) for child in children if isinstance(child, kinds))


def load_json(data: str | bytes):
    """Parse a request body: JSON syntax errors raise json.JSONDecodeError (a ValueError) as usual;
    numbers no column or float holds, NaN and Infinity raise Invalid (422), and bodies nested too
    deep raise BadJson (400)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")  # RFC 8259: JSON between systems is UTF-8 (UnicodeDecodeError is a ValueError)
    try:
        value = json.loads(data, parse_int=_whole_number, parse_float=_finite_number, parse_constant=_no_constant)
    except RecursionError:
        raise BadJson(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep") from None
    if isinstance(value, (dict, list, str)):
        # JSON text reaches a parsed string as NUL only by the escape \u0000 (json refuses it raw),
        # so in a body without one the check skips its strings, most of what an annotation set holds.
        _check_shape(value, strings="\\u0000" in data)
    return value


def _has_wide_number(value) -> bool:
    pending = [value]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, int) and not INT64_MIN <= node <= INT64_MAX:
            return True
    return False


def check_numbers(args) -> None:
    """Refuse whole numbers beyond 64 bits in parsed arguments: a query string's or form's digits
    become ints in the schema, past load_json's bounds."""
    if not _has_wide_number(args):  # the names of the arguments are built only to name the one at fault
        return
    pending = [("", args)]
    while pending:
        name, value = pending.pop()
        if isinstance(value, dict):
            pending.extend((f"{name}.{key}".lstrip("."), child) for key, child in value.items())
        elif isinstance(value, list):
            pending.extend((f"{name}[{i}]", child) for i, child in enumerate(value))
        elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise Invalid(f"{name}: {_short(str(value))} is out of range", code="out_of_range", details={"field": name})


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, parsing with load_json: request.get_json() reads with app.json, as does the
    test client, whose values are Loupe's own and well within it."""

    def loads(self, s, **kwargs):
        return load_json(s)


class _SessionSerializer(TaggedJSONSerializer):
    """The session cookie's JSON, read by the standard parser rather than app.json's load_json.

    Every request reads the cookie, and load_json's checks cost more than the parse. They are not
    needed there: the cookie is read only once its signature (the app's secret key) is verified,
    so what it holds is what Loupe wrote.
    """

    def loads(self, value: str):
        return self._untag_scan(json.loads(value))


class SessionInterface(SecureCookieSessionInterface):
    serializer = _SessionSerializer()


class Request(HtmxAwareRequest):
    """htmx-flask's request (request.htmx), with MAX_JSON_BYTES for JSON bodies, answering bad JSON
    in Loupe's shape."""

    @property
    def max_content_length(self) -> int | None:
        limit = super().max_content_length
        if self._max_content_length is None and self.is_json:  # a route's own limit stands
            return min(limit or MAX_JSON_BYTES, MAX_JSON_BYTES)
        return limit

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value

    def on_json_loading_failed(self, e: ValueError | None):
        if e is None:  # not declared as JSON: Flask's 415
            return super().on_json_loading_failed(e)
        raise BadJson(f"The request body is not valid JSON: {e}")


# ---- response headers ----------------------------------------------------------------------

# Templates carry style="" attributes (bar widths, label colours), hence 'unsafe-inline' for styles
# only; scripts come from /static alone, and the canvas draws images from blob: and data: URLs.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# JSON, images and files: nothing in them may run or load, even if a browser opens one as a page.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox"


def security_headers(response: flask.Response) -> flask.Response:
    """Headers every answer carries (after_request): no sniffing, no framing, no cross-site referrer."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", PAGE_POLICY if response.mimetype == "text/html" else DATA_POLICY)
    return response


# ---- the embedded launcher's server ---------------------------------------------------------

# Set by the launcher's server on a request whose body it refused unread (over max_request_body_size).
BODY_REFUSED = "loupe.body_refused"


class _RefusedBodyTask(WSGITask):
    """Run the app for a request waitress refused for its body size, so the 413 is Loupe's own
    (JSON under /api, the error page or partial), not waitress's plain text."""

    def execute(self):
        self.set_close_on_finish()  # the unread body is still on the connection
        super().execute()

    def get_environment(self):
        environ = super().get_environment()
        environ[BODY_REFUSED] = True
        return environ


def _error_task(channel, request):
    task_class = _RefusedBodyTask if isinstance(request.error, waitress.utilities.RequestEntityTooLarge) else ErrorTask
    return task_class(channel, request)


class _Channel(HTTPChannel):
    error_task_class = staticmethod(_error_task)


def serve(app: flask.Flask, **kw) -> None:
    """waitress.serve(app, **kw), with its 413 answered by the app."""
    logging.basicConfig()
    server = create_server(app, **kw)
    server.print_listen("Serving on http://{}:{}")
    server.run()


def create_server(app: flask.Flask, **kw):
    """waitress.create_server(app, **kw), with its 413 answered by the app."""
    server = waitress.create_server(app, **kw)
    server.channel_class = _Channel
    return server


def _refuse_unread_body():
    if flask.request.environ.get(BODY_REFUSED):
        raise RequestEntityTooLarge()


def _refuse_nul_text():
    """NUL in a path names nothing (404); in a query string or form field it is refused (422)."""
    request = flask.request
    if "\x00" in request.path:
        raise NotFound()
    for where, values in (("The query string", request.args), ("A form field", request.form)):
        for key, value in values.items(multi=True):
            if "\x00" in key or "\x00" in value:
                raise _nul_refused(f"{where} ({_short(key)})")


def init_app(app: flask.Flask) -> None:
    """Install the bounded id converter, the request class, the JSON and session cookie readers and the headers.

    Call after htmx.init_app (it sets its own request class) and before any `<int:>` route is added.
    """
    app.url_rule_class = IdRule
    app.url_map.converters["int"] = IdConverter
    app.request_class = Request
    app.json = JSONProvider(app)
    app.session_interface = SessionInterface()
    # First of all before_request hooks: CSRF's would read the body the server did not keep.
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_unread_body)
    app.before_request_funcs[None].insert(1, _refuse_nul_text)
    app.after_request(security_headers)
