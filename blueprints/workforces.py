"""Workforce pages: the list, a workforce with its members and invite links, the invite
acceptance page, and the "Attached workforces" section of a dataset's overview."""

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_user

from core.errors import INT32_MAX, Conflict, Invalid, LoupeError, parse_int
from core.htmx import fragment, hx_redirect, is_htmx
from core.permissions import can, public, requires
from models import WorkforceRole
from services import team_stats
from services import workforces as service

bp = Blueprint("workforces", __name__)

ROLES = list(WorkforceRole)
PAGE = 50


def dataset_section(dataset) -> dict:
    """What the dataset overview's "Attached workforces" section shows (blueprints/datasets.py renders it too)."""
    choices = service.attachable(dataset, current_user) if can(current_user, "dataset:members", dataset) else []
    return {"attached_workforces": service.workforces_of(dataset), "attachable_workforces": choices}


# ---- the list and one workforce --------------------------------------------------------------


def _index(status: int = 200, **context):
    try:
        page = max(1, parse_int(request.args.get("page", "1"), INT32_MAX))
    except ValueError:
        raise Invalid("page must be a whole number", details={"field": "page"}) from None
    workforces, total = service.list_workforces(current_user, limit=PAGE, offset=(page - 1) * PAGE)
    return render_template(
        "workforces/index.html", workforces=workforces, total=total, page=page, pages=max(1, -(-total // PAGE)),
        counts=service.member_counts(workforces), my_roles=service.roles_in(current_user, workforces), **context,
    ), status


@bp.get("/workforces/")
def index():
    return _index()


@bp.post("/workforces/")
@requires("workforces:create")
def create():
    name = request.form.get("name", "")
    try:
        workforce = service.create_workforce(name, by=current_user)
    except (Invalid, Conflict) as exc:
        return _index(exc.status, create_error=exc.message, name=name)
    return redirect(url_for("workforces.show", workforce_id=workforce.id), 303)


def _members_context(workforce, **context) -> dict:
    return {"workforce": workforce, "members": service.list_members(workforce), "roles": ROLES, **context}


def _show(workforce, status: int = 200, **context):
    return render_template(
        "workforces/show.html", datasets=service.datasets_of(workforce, current_user), default_hours=service.DEFAULT_INVITE_HOURS,
        team_stats=team_stats.workforce_team_stats(workforce, current_user),
        max_hours=service.MAX_INVITE_HOURS, **_members_context(workforce, **context),
    ), status


@bp.get("/workforces/<int:workforce_id>")
@requires("workforce:view")
def show(workforce):
    return _show(workforce)


@bp.post("/workforces/<int:workforce_id>")
@requires("workforce:manage")
def update(workforce):
    try:
        service.rename_workforce(workforce, request.form.get("name", ""))
    except (Invalid, Conflict) as exc:
        return _show(workforce, exc.status, name_error=exc.message)
    return redirect(url_for("workforces.show", workforce_id=workforce.id), 303)


@bp.post("/workforces/<int:workforce_id>/delete")
@requires("workforce:manage")
def delete(workforce):
    service.delete_workforce(workforce)
    target = url_for("workforces.index")
    return hx_redirect(target) if is_htmx() else redirect(target, 303)


# ---- members ---------------------------------------------------------------------------------


def _members_response(workforce, error: LoupeError | None = None, status: int | None = None):
    """The members partial for HTMX; without it, back to the page (or the page with the error)."""
    status = status or (error.status if error else 200)
    message = error.message if error else None
    if not is_htmx():
        if error:
            return _show(workforce, status, member_error=message)
        return redirect(url_for("workforces.show", workforce_id=workforce.id), 303)
    return fragment("partials/workforces/_members.html", status, "workforceMembersChanged" if not error else None,
                    **_members_context(workforce, member_error=message))


@bp.post("/workforces/<int:workforce_id>/members")
@requires("workforce:manage")
def add_member(workforce):
    try:
        service.add_member(workforce, request.form.get("email", ""), request.form.get("role", ""))
    except LoupeError as exc:
        # An unknown user is the form's fault (422), as on the dataset's members form; a clash is 409.
        return _members_response(workforce, exc, None if isinstance(exc, Conflict) else 422)
    return _members_response(workforce)


@bp.post("/workforces/<int:workforce_id>/members/<int:member_id>")
@requires("workforce:manage")
def update_member(workforce, member_id: int):
    try:
        service.change_role(workforce, member_id, request.form.get("role", ""))
    except (Invalid, Conflict) as exc:  # a member not found is the error page's
        return _members_response(workforce, exc)
    return _members_response(workforce)


@bp.post("/workforces/<int:workforce_id>/members/<int:member_id>/delete")
@requires("workforce:manage")
def remove_member(workforce, member_id: int):
    try:
        service.remove_member(workforce, member_id)
    except Conflict as exc:
        return _members_response(workforce, exc)
    return _members_response(workforce)


# ---- invite links ----------------------------------------------------------------------------


@bp.post("/workforces/<int:workforce_id>/invites")
@requires("workforce:manage")
def create_invite(workforce):
    context = {"workforce": workforce, "roles": ROLES, "default_hours": service.DEFAULT_INVITE_HOURS, "max_hours": service.MAX_INVITE_HOURS}
    try:
        hours = parse_int(request.form.get("hours", "") or str(service.DEFAULT_INVITE_HOURS), INT32_MAX)
    except ValueError:
        hours = None  # the service says what a valid number of hours is
    try:
        invite, token = service.create_invite(workforce, request.form.get("role", ""), hours, by=current_user)
    except Invalid as exc:
        if not is_htmx():
            return _show(workforce, 422, invite_error=exc.message)
        return fragment("partials/workforces/_invite.html", 422, invite_error=exc.message, **context)
    # Shown once, in this answer only: the page is never rendered with it again.
    link = url_for("workforces.invite", token=token, _external=True)
    if not is_htmx():
        return _show(workforce, 201, invite=invite, invite_url=link)
    return fragment("partials/workforces/_invite.html", 201, invite=invite, invite_url=link, **context)


def _invite_page(token: str, status: int = 200, **context):
    invite, workforce = service.usable_invite(token)
    return render_template("workforces/invite.html", token=token, invite=invite, workforce=workforce, **context), status


@bp.get("/invites/<token>")
@public
def invite(token: str):
    return _invite_page(token)


@bp.post("/invites/<token>")
@public
def accept(token: str):
    """Join with a signed-in account, or sign up (anonymous) and join; either way to the workforce's page."""
    form = request.form
    try:
        if current_user.is_authenticated:
            _, workforce = service.accept_invite(token, current_user)
        else:
            user, workforce = service.sign_up_with_invite(
                token, email=form.get("email", ""), display_name=form.get("display_name", ""), password=form.get("password", "")
            )
            login_user(user)
    except (Invalid, Conflict) as exc:  # used, expired or unknown links are the error page's
        return _invite_page(token, exc.status, error=exc.message, email=form.get("email", ""), display_name=form.get("display_name", ""))
    return redirect(url_for("workforces.show", workforce_id=workforce.id), 303)


# ---- a dataset's attached workforces ---------------------------------------------------------


def _dataset_response(dataset, error: LoupeError | None = None):
    """The section's partial for HTMX; without it, back to the overview (or the error page: the
    overview has no slot for this section's error)."""
    if not is_htmx():
        if error:
            return render_template("error.html", status=error.status, code=error.code, message=error.message), error.status
        return redirect(url_for("datasets.show", dataset_id=dataset.id), 303)
    return fragment(
        "partials/workforces/_dataset_workforces.html", error.status if error else 200, None if error else "datasetWorkforcesChanged",
        dataset=dataset, workforce_error=error.message if error else None, **dataset_section(dataset),
    )


@bp.post("/datasets/<int:dataset_id>/workforces")
@requires("dataset:members")
def attach(dataset):
    try:
        workforce_id = parse_int(request.form.get("workforce_id", ""), INT32_MAX)
    except ValueError:
        workforce_id = None  # the service says what it wants
    try:
        service.attach(dataset, workforce_id, by=current_user)
    except (Invalid, Conflict) as exc:
        return _dataset_response(dataset, exc)
    return _dataset_response(dataset)


@bp.post("/datasets/<int:dataset_id>/workforces/<int:workforce_id>/delete")
@requires("dataset:members")
def detach(dataset, workforce):
    service.detach(dataset, workforce)
    return _dataset_response(dataset)
