"""The signed-in user's profile: API tokens and password."""

from flask import Blueprint, current_app, render_template, request
from flask_login import current_user, login_user
from flask_login.config import COOKIE_NAME

from core.errors import Invalid, LoupeError
from core.htmx import render
from services import accounts

bp = Blueprint("profile", __name__, url_prefix="/profile")


def _tokens(**context):
    return render("profile/show.html", "partials/profile/_tokens.html", tokens=accounts.list_tokens(current_user), **context)


@bp.get("/")
def show():
    return _tokens()


@bp.post("/tokens")
def create_token():
    try:
        token, secret = accounts.create_token(current_user, request.form.get("name", ""))
    except Invalid as exc:
        return render("profile/show.html", "partials/profile/_tokens.html", 422, tokens=accounts.list_tokens(current_user), token_error=exc.message)
    return _tokens(new_secret=secret, new_token=token)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    accounts.revoke_token(current_user, token_id)
    return _tokens()


@bp.post("/password")
def change_password():
    form = request.form
    if not current_user.check_password(form.get("current", "")):
        return render_template("partials/profile/_password.html", password_error="The current password is wrong"), 422
    try:
        accounts.update_user(current_user, password=form.get("new", ""), by=current_user)
    except LoupeError as exc:
        return render_template("partials/profile/_password.html", password_error=exc.message), 422
    # The change ended every session of the user; this browser, which proved the password, stays signed in.
    login_user(current_user._get_current_object(), remember=current_app.config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME) in request.cookies)
    return render_template("partials/profile/_password.html", password_saved=True)
