"""Site admin: create, deactivate, reset and promote user accounts."""

from flask import Blueprint, request
from flask_login import current_user, login_user
from sqlalchemy import select

from core.errors import LoupeError, NotFound
from core.extensions import db
from core.htmx import render
from core.permissions import requires
from models import User
from services import accounts

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _users(status: int = 200, **context):
    users = db.session.scalars(select(User).order_by(User.email)).all()
    return render("admin/users.html", "partials/admin/_users.html", status, users=users, **context)


@bp.get("/users")
@requires("users:manage")
def users():
    return _users()


@bp.post("/users")
@requires("users:manage")
def create_user():
    form = request.form
    try:
        user, password = accounts.create_user(
            form.get("email", ""), form.get("password") or None, display_name=form.get("name", ""), is_admin=form.get("is_admin") == "1"
        )
    except LoupeError as exc:
        return _users(exc.status, error=exc.message)
    return _users(created=user, created_password=None if form.get("password") else password)


@bp.post("/users/<int:user_id>")
@requires("users:manage")
def update_user(user_id: int):
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    action = request.form.get("action")
    changes = {
        "deactivate": {"active": False}, "activate": {"active": True},
        "make_admin": {"is_admin": True}, "remove_admin": {"is_admin": False},
    }
    new_password = None
    try:
        if action == "reset_password":
            new_password = request.form.get("password") or accounts.generate_password()
            accounts.update_user(user, password=new_password, by=current_user)
            if user.id == current_user.id:  # the reset ended every session; keep the admin's own one
                login_user(user)
        elif action in changes:
            accounts.update_user(user, by=current_user, **changes[action])
        else:
            return _users(422, error=f"Unknown action {action!r}")
    except LoupeError as exc:
        return _users(exc.status, error=exc.message)
    return _users(reset_user=user if new_password else None, reset_password=new_password)
