"""What every API blueprint shares: a request parser whose errors speak the API's error shape."""

from http import HTTPStatus

import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.datastructures import CombinedMultiDict

from blueprints.api.schemas import ErrorSchema
from core.errors import BadJson, LoupeError
from core.http import check_numbers, load_json


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
        # load_json, not webargs' own parse: the limits on numbers and nesting hold here too.
        return load_json(req.get_data(cache=True))

    def parse(self, *args, **kwargs):
        parsed = super().parse(*args, **kwargs)
        check_numbers(parsed)  # an id or cursor beyond 64 bits would fail the query, not match nothing
        return parsed

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

    def add_url_rule(self, rule, endpoint=None, view_func=None, provide_automatic_options=None, **options):
        """Register the route, and document every error it can answer in the error shape."""
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)
        path = (self.url_prefix or "") + rule
        for method, doc in self._docs[self._endpoints[-1]].items():
            if method != "parameters":
                responses = doc.setdefault("response", {}).setdefault("responses", {})
                for status, documented in responses.items():
                    if int(status) >= 400:  # alt_response(409, description=...): the body is still the error shape
                        for response in documented:
                            if isinstance(response, dict) and response.get("schema") is None:
                                response["schema"] = ErrorSchema
                for status in error_statuses(path, view_func, doc):
                    responses.setdefault(status, [HTTPStatus(status).name])


def error_statuses(path: str, view, doc: dict) -> list[int]:
    """The errors an operation can answer, read from how the code is built, for the OpenAPI document.

    Route-specific ones (409 from a service, 422 from a route without arguments) are declared on the
    route with alt_response.
    """
    statuses = [401]  # every API route needs a token or a session
    if getattr(view, "permission_scope", None):
        statuses += [403, 404]  # requires() loads the URL's objects and checks the scope
    elif "<" in path:
        statuses.append(404)
    bodies = {p["in"] for p in doc.get("arguments", {}).get("parameters", [])}
    if bodies or "<" in path:
        statuses.append(400)  # a body, query or path the parser cannot read (bad JSON, numbers beyond limits)
    if bodies & {"json", "multipart"}:
        statuses.append(413)
    if "json" in bodies:
        statuses.append(415)
    if 202 in doc.get("response", {}).get("responses", {}):
        # services.jobs.start_job: nothing new starts on a dataset being deleted (409), except the
        # deletion itself, which answers the active one; a job saved while the queue is unreachable
        # (503) can be re-run.
        statuses += [503] if getattr(view, "starts_deletion", False) else [409, 503]
    return statuses


def starts_deletion(view):
    """Mark the route that deletes a dataset: its job starts (or answers the active deletion) while
    the dataset is being deleted, so unlike every other job route it has no 409 to document."""
    view.starts_deletion = True
    return view


class Extended:
    """An object seen through its own attributes plus a few computed ones, for a schema to dump."""

    def __init__(self, obj, **extra):
        self._obj = obj
        self.__dict__.update(extra)

    def __getattr__(self, name):
        return getattr(self._obj, name)
