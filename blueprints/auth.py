"""Sign in, sign out and first-run admin creation."""

from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from core.errors import Invalid, TooMany
from core.permissions import public
from services.accounts import authenticate, create_user, end_sessions, needs_first_admin

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would let a phishing link bounce through Loupe.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("datasets.index")


@bp.get("/login")
@public
def login():
    if needs_first_admin():
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", next=request.args.get("next", ""))


@bp.post("/login")
@public
def login_submit():
    email, password = request.form.get("email", ""), request.form.get("password", "")
    try:
        user = authenticate(
            email, password, request.remote_addr or "?",
            attempts=current_app.config["LOUPE_LOGIN_ATTEMPTS"], window_s=current_app.config["LOUPE_LOGIN_WINDOW_S"],
        )
    except (Invalid, TooMany) as exc:
        return render_template("auth/login.html", error=exc.message, email=email, next=request.form.get("next", "")), exc.status
    login_user(user, remember=bool(request.form.get("remember")))
    return redirect(_safe_next(request.form.get("next")), 303)


@bp.post("/logout")
def logout():
    end_sessions(current_user)  # every browser of the user, not only this one
    logout_user()
    return redirect(url_for("auth.login"), 303)


@bp.route("/setup", methods=["GET", "POST"])
@public
def setup():
    """Create the first admin on a fresh instance; closed once any user exists."""
    if not needs_first_admin():
        return redirect(url_for("auth.login"))
    error = None
    if request.method == "POST":
        try:
            user, _ = create_user(request.form.get("email", ""), request.form.get("password", ""), display_name=request.form.get("name", ""), is_admin=True)
        except Invalid as exc:
            error = exc.message
        else:
            login_user(user)
            return redirect(url_for("datasets.index"), 303)
    return render_template("auth/setup.html", error=error), 422 if error else 200


@bp.get("/")
def home():
    return redirect(url_for("datasets.index"))
