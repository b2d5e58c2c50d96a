"""Blueprint registration and the app-wide default deny (every route needs a user unless @public)."""

from flask import Flask, g, request
from flask_login import current_user

from core.errors import Unauthorized
# Not imported as `api`: importing the blueprints.api package rebinds that name in this module.
from core.extensions import api as openapi
from core.extensions import csrf, login_manager
from core.extensions import db
from models import User
from services.accounts import user_for_token


def register_blueprints(app: Flask) -> None:
    from blueprints import admin, auth, datasets, images, jobs, labeling, labels, profile, uploads
    from blueprints.api import API_BLUEPRINTS

    for module in (auth, datasets, images, uploads, labels, labeling, jobs, profile, admin):
        app.register_blueprint(module.bp)
    for bp in API_BLUEPRINTS:
        csrf.exempt(bp)  # the API authenticates by token only, never by cookie, so CSRF cannot apply
        openapi.register_blueprint(bp)

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id))

    @app.before_request
    def authenticate():
        if request.path.startswith("/api/v1/") and request.blueprint != "api-docs":
            g._login_user = _token_user()  # flask-login's current_user reads g._login_user
            return
        view = app.view_functions.get(request.endpoint)
        if request.endpoint in (None, "static", "api-docs.openapi_json") or request.blueprint == "api-docs" or getattr(view, "public", False):
            return
        if not current_user.is_authenticated:
            raise Unauthorized("Sign in to continue")


def _token_user() -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header:
        raise Unauthorized("Send an API token: Authorization: Token <token>")
    if scheme.lower() not in ("token", "bearer") or not secret.strip():
        raise Unauthorized("The Authorization header must be 'Token <token>' or 'Bearer <token>'")
    user = user_for_token(secret.strip())
    if user is None:
        raise Unauthorized("The API token is invalid or was revoked")
    return user
