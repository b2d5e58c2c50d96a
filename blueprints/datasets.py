"""Dataset pages: list (live search, filters, sort, paging), create, overview, settings, members."""

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints import workforces
from core.errors import INT32_MAX, Conflict, Forbidden, Invalid, LoupeError, parse_int
from core.htmx import fragment, hx_redirect, is_htmx, render
from core.permissions import requires
from models import DatasetType, Role
from services import datasets as service
from services import team_stats
from services.jobs import dataset_status, recent_jobs

bp = Blueprint("datasets", __name__, url_prefix="/datasets")


def _int_arg(name: str, default: int) -> int:
    try:
        return parse_int(str(request.args.get(name, default)), INT32_MAX)
    except ValueError:
        raise Invalid(f"{name} must be a whole number", details={"field": name}) from None


@bp.get("/")
def index():
    q = service.DatasetQuery(
        search=request.args.get("search", "").strip(),
        type=request.args.get("type", ""),
        archived=request.args.get("archived") == "1",
        sort=request.args.get("sort", "created_at"),
        order=request.args.get("order", "desc"),
        limit=24,
        offset=max(0, _int_arg("page", 1) - 1) * 24,
    )
    items, total = service.list_datasets(current_user, q)
    return render(
        "datasets/index.html", "partials/datasets/_list.html",
        datasets=items, total=total, q=q, page=q.offset // q.limit + 1, pages=max(1, -(-total // q.limit)),
        previews=service.preview_image_ids(items, current_user), statuses={d.id: dataset_status(d) for d in items}, types=list(DatasetType),
        counters=service.counters_of(items, current_user),
    )


@bp.get("/new")
def new():
    return render_template("datasets/new.html", types=list(DatasetType), form={})


@bp.post("/")
def create():
    form = request.form
    try:
        dataset = service.create_dataset(current_user, form.get("name", ""), form.get("type", ""), form.get("description", ""))
    except Invalid as exc:
        return render_template("datasets/new.html", types=list(DatasetType), form=form, error=exc.message), 422
    return redirect(url_for("images.index", dataset_id=dataset.id), 303)


def _overview(dataset, status_code: int = 200, **extra):
    return render_template(
        "datasets/show.html", dataset=dataset, stats=service.stats(dataset, current_user), status=dataset_status(dataset),
        jobs=recent_jobs(current_user, dataset, limit=10), members=service.list_members(dataset), roles=list(Role),
        **workforces.dataset_section(dataset), **extra,
    ), status_code


@bp.get("/<int:dataset_id>/team-stats")
@requires("dataset:view")
def team_statistics(dataset):
    """The overview's labeling-task card, loaded after the page: its figures aggregate every
    assignment of the dataset's tasks, which a big task makes slow, and the page must not wait."""
    return fragment("partials/team_stats/_dataset_card.html", dataset=dataset, team_stats=team_stats.dataset_team_stats(dataset, current_user))


@bp.get("/<int:dataset_id>")
@requires("dataset:view")
def show(dataset):
    return _overview(dataset)


@bp.get("/<int:dataset_id>/settings")
@requires("dataset:manage")
def edit(dataset):
    return render_template("datasets/settings.html", dataset=dataset)


@bp.post("/<int:dataset_id>/settings")
@requires("dataset:manage")
def update(dataset):
    form = request.form
    try:
        service.update_dataset(dataset, name=form.get("name", ""), description=form.get("description", ""), public=form.get("public") == "1")
    except Invalid as exc:
        return render("datasets/settings.html", "partials/datasets/_settings_form.html", 422, dataset=dataset, error=exc.message)
    return render("datasets/settings.html", "partials/datasets/_settings_form.html", dataset=dataset, saved=True)


@bp.post("/<int:dataset_id>/archive")
@requires("dataset:manage")
def archive(dataset):
    service.update_dataset(dataset, archived=request.form.get("archived") == "1")
    target = url_for("datasets.edit", dataset_id=dataset.id)
    return hx_redirect(target) if is_htmx() else redirect(target, 303)


@bp.post("/<int:dataset_id>/delete")
@requires("dataset:manage")
def delete(dataset):
    if request.form.get("confirm_name", "") != dataset.name:
        raise Invalid("Type the dataset's name exactly to confirm deleting it", details={"field": "confirm_name"})
    job = service.request_delete(dataset, current_user)
    target = url_for("jobs.show", job_id=job.id)
    return hx_redirect(target) if is_htmx() else redirect(target, 303)


@bp.post("/<int:dataset_id>/refresh-counters")
@requires("dataset:import")
def refresh_counters(dataset):
    job = service.request_refresh_counters(dataset, current_user)
    target = url_for("jobs.show", job_id=job.id)
    return hx_redirect(target) if is_htmx() else redirect(target, 303)


def _members_response(dataset, error: LoupeError | None = None, status: int | None = None):
    status = status or (error.status if error else 200)
    if not is_htmx():
        if error:
            return _overview(dataset, status, member_error=error.message)
        return redirect(url_for("datasets.show", dataset_id=dataset.id), 303)
    return render_template(
        "partials/datasets/_members.html", dataset=dataset, members=service.list_members(dataset), roles=list(Role),
        member_error=error.message if error else None,
    ), status


@bp.post("/<int:dataset_id>/members")
@requires("dataset:members")
def add_member(dataset):
    try:
        service.add_member(dataset, request.form.get("email", ""), request.form.get("role", ""), by=current_user)
    except LoupeError as exc:
        # The role rules answer 403/409 as the API does; an unknown email or role is the form's fault.
        return _members_response(dataset, exc, None if isinstance(exc, (Forbidden, Conflict)) else 422)
    return _members_response(dataset)


@bp.post("/<int:dataset_id>/members/<int:member_id>/delete")
@requires("dataset:members")
def remove_member(dataset, member_id: int):
    try:
        service.remove_member(dataset, member_id, by=current_user)
    except (Forbidden, Conflict) as exc:  # the role rules; a member not found is the error page's
        return _members_response(dataset, exc)
    return _members_response(dataset)
