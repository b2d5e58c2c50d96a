"""The JSON API under /api/v1 (flask-smorest blueprints; OpenAPI generated from them)."""

from blueprints.api import accounts, annotations, datasets, images, jobs, labels, tags
from blueprints.api.schemas import ErrorSchema
from core.extensions import api

API_BLUEPRINTS = [accounts.bp, datasets.bp, images.bp, jobs.bp, labels.bp, annotations.bp, tags.bp]

TOKEN_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": "Token <token> or Bearer <token>; create one on your profile or with `flask tokens create EMAIL`",
}


@accounts.bp.record_once
def _document_auth_and_errors(state) -> None:
    # Runs once per app, after api.init_app() built that app's spec.
    spec = api.spec
    if "token" not in spec.components.security_schemes:
        spec.components.security_scheme("token", TOKEN_SCHEME)
    spec.options["security"] = [{"token": []}]
    # flask-smorest documents its own error shape under "Error"; app.py answers with ours.
    spec.components.schemas.pop("Error", None)
    spec.components.schema("Error", schema=ErrorSchema)
