"""What every API blueprint shares: a request parser whose errors speak the API's error shape."""

import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.datastructures import CombinedMultiDict

from core.errors import LoupeError


class BadJson(LoupeError):
    status, code = 400, "invalid_json"


class UnsupportedMediaType(LoupeError):
    status, code = 415, "unsupported_media_type"


class ApiParser(FlaskParser):
    """webargs' Flask parser, plus a `multipart` location (form fields and files in one schema)."""

    __location_map__ = {**FlaskParser.__location_map__, "multipart": "load_multipart"}

    def _raw_load_json(self, req):
        # webargs silently ignores a body that is not declared JSON, so a form-encoded PATCH would
        # "succeed" while changing nothing; refuse it instead.
        if not is_json_request(req):
            if req.content_length:
                raise UnsupportedMediaType("Send the request body as JSON, with Content-Type: application/json")
            return core.missing
        return core.parse_json(req.get_data(cache=True))

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        raise BadJson(f"The request body is not valid JSON: {error}")

    def load_multipart(self, req, schema):
        """Form fields and uploaded files together: OpenAPI allows one multipart body per operation."""
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ApiParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "multipart": "multipart/form-data",
    }


class Extended:
    """An object seen through its own attributes plus a few computed ones, for a schema to dump."""

    def __init__(self, obj, **extra):
        self._obj = obj
        self.__dict__.update(extra)

    def __getattr__(self, name):
        return getattr(self._obj, name)
