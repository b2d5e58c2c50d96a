"""Blueprint registration and the app-wide default deny (every route needs a user unless @public)."""

from flask import Flask, current_app, g, request
from flask_login import current_user

from core.errors import Unauthorized
# Not imported as `api`: importing the blueprints.api package rebinds that name in this module.
from core.extensions import api as openapi
from core.extensions import csrf, login_manager
from core.permissions import load_user
from models import User
from services.accounts import user_for_token


def register_blueprints(app: Flask) -> None:
    from blueprints import admin, auth, datasets, exports, images, imports, jobs, labeling, labels, profile, reviews, sampling, signed_files, splits, tasks, uploads, versions, workforces
    from blueprints.api import API_BLUEPRINTS

    for module in (auth, datasets, images, uploads, imports, labels, labeling, jobs, profile, admin, signed_files, exports, versions, splits, reviews, workforces, sampling, tasks):
        app.register_blueprint(module.bp)
    app.register_blueprint(tasks.work_bp)
    for bp in API_BLUEPRINTS:
        csrf.exempt(bp)  # _api_user checks CSRF itself, on cookie-authenticated writes only
        openapi.register_blueprint(bp)

    # Every request: a session or remember-me cookie of an ended generation signs nobody in. The
    # user is read with the URL's dataset and image, which requires() asks for next.
    login_manager.user_loader(lambda session_id: User.from_session_id(session_id, load_user))

    @app.before_request
    def authenticate():
        if request.path.startswith("/api/v1/") and request.blueprint != "api-docs":
            g._login_user = _api_user()  # flask-login's current_user reads g._login_user
            return
        view = app.view_functions.get(request.endpoint)
        if request.endpoint in (None, "static", "api-docs.openapi_json") or request.blueprint == "api-docs" or getattr(view, "public", False):
            return
        if not current_user.is_authenticated:
            raise Unauthorized("Sign in to continue")


def _api_user() -> User:
    """The API caller: by token when an Authorization header is sent, else by the browser's session."""
    header = request.headers.get("Authorization", "")
    if not header:
        user = current_user._get_current_object()
        if not user.is_authenticated:
            raise Unauthorized("Send an API token (Authorization: Token <token>) or sign in")
        # A cookie is sent by the browser on its own, so a cookie-authenticated write must prove
        # it comes from a Loupe page (X-CSRFToken); a token is never sent implicitly.
        if current_app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect()
        return user
    scheme, _, secret = header.partition(" ")
    if scheme.lower() not in ("token", "bearer") or not secret.strip():
        raise Unauthorized("The Authorization header must be 'Token <token>' or 'Bearer <token>'")
    user = user_for_token(secret.strip())
    if user is None:
        raise Unauthorized("The API token is invalid or was revoked")
    return user
