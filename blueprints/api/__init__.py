"""The JSON API under /api/v1 (flask-smorest blueprints; OpenAPI generated from them)."""

from blueprints.api import (
    accounts, annotations, datasets, exports, images, imports, jobs, labels, reviews, sampling, splits, stats, tags, tasks, versions, workforces,
)
from blueprints.api.schemas import ErrorSchema, whole_number_bounds
from core.extensions import api

API_BLUEPRINTS = [accounts.bp, datasets.bp, images.bp, jobs.bp, labels.bp, annotations.bp, tags.bp, exports.bp, versions.bp, splits.bp, imports.bp, tasks.bp, tasks.task_bp, tasks.repetition_bp, reviews.bp, workforces.bp,
                 stats.bp, sampling.task_bp, sampling.bp]

TOKEN_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": "Token <token> or Bearer <token>; create one on your profile or with `flask tokens create EMAIL`",
}
# blueprints._api_user: without an Authorization header, the signed-in browser session is the caller.
SESSION_SCHEME = {
    "type": "apiKey",
    "in": "cookie",
    "description": "The signed-in browser session (Loupe's own pages); a write (POST, PUT, PATCH, DELETE) must also send "
    "the page's CSRF token in the X-CSRFToken header",
}


@accounts.bp.record_once
def _document_auth_and_errors(state) -> None:
    # Runs once per app, after api.init_app() built that app's spec.
    spec = api.spec
    # Each operation lists the errors it can answer (base.error_statuses); a catch-all `default`
    # would make any status look documented.
    api.DEFAULT_ERROR_RESPONSE_NAME = None
    api.ma_plugin.converter.add_attribute_function(whole_number_bounds)
    if "token" not in spec.components.security_schemes:
        spec.components.security_scheme("token", TOKEN_SCHEME)
        spec.components.security_scheme("session", {**SESSION_SCHEME, "name": state.app.config["SESSION_COOKIE_NAME"]})
    spec.options["security"] = [{"token": []}, {"session": []}]  # either one
    # flask-smorest documents its own error shape under "Error"; app.py answers with ours.
    spec.components.schemas.pop("Error", None)
    spec.components.schema("Error", schema=ErrorSchema)
