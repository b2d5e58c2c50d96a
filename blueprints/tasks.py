"""Labeling task pages: a dataset's tasks, the new-task form (from the grid's selection or filter),
a task's progress with reassigning, and a labeler's "My work" with Start."""

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from core.errors import INT64_MAX, Invalid, LoupeError, parse_int
from core.htmx import hx_redirect, is_htmx, render
from core.permissions import can, requires
from models import JobStatus, TaskStrategy
from services import datasets as dataset_service
from services import tasks as service
from services import workforces as workforce_service

bp = Blueprint("tasks", __name__, url_prefix="/datasets/<int:dataset_id>/tasks")
work_bp = Blueprint("work", __name__)


def _int(value: str, field: str) -> int:
    try:
        return parse_int(value, INT64_MAX)
    except ValueError:
        raise Invalid(f"{field} must be a whole number", details={"field": field}) from None


def _form_fields(form) -> dict:
    """The new-task form as the dict services.tasks.plan_task reads (the API's JSON shape)."""
    fields = {"name": form.get("name", ""), "strategy": form.get("strategy") or "round_robin",
              "review_required": form.get("review_required", ""), "repetition": _int(form.get("repetition") or "1", "repetition")}
    if form.get("assign_to") == "workforce":
        fields["workforce_id"] = _int(form.get("workforce_id", ""), "workforce_id")
    else:
        fields["member_ids"] = [_int(value, "member_ids") for value in form.getlist("member_ids")]
    if fields["strategy"] == TaskStrategy.batch.value:
        fields["batch_size"] = _int(form.get("batch_size", ""), "batch_size")
    rate = form.get("sampling_percent", "").strip() or "0"
    try:
        fields["sampling_rate"] = float(rate) / 100
    except ValueError:
        raise Invalid("The sampling rate is a percentage from 0 to 100", details={"field": "sampling_rate"}) from None
    if form.get("image_ids"):
        fields["image_ids"] = [_int(value, "image_ids") for value in form["image_ids"].split(",") if value.strip()]
    for key in service.FILTER_FIELDS:
        if form.get(key):
            fields[key] = form[key]
    return fields


def _new_form(dataset, source: dict, error: str | None = None, status: int = 200, values: dict | None = None):
    """The new-task form; `source` is the selection (image_ids) or the grid filter it was opened from."""
    values = values or {}
    chosen = values.getlist("member_ids") if hasattr(values, "getlist") else []
    return render_template(
        "tasks/new.html", dataset=dataset, source=source, error=error, values=values, chosen=chosen,
        members=dataset_service.list_members(dataset), workforces=[w for w, _ in workforce_service.workforces_of(dataset)],
        strategies=list(TaskStrategy), matching=service.count_candidates(dataset, current_user, source),
    ), status


@bp.get("/")
@requires("dataset:view")
def index(dataset):
    tasks = service.tasks_of(dataset, current_user)
    return render_template("tasks/index.html", dataset=dataset, tasks=[(t, service.task_progress(t)) for t in tasks])


@bp.get("/new")
@requires("dataset:tasks")
def new(dataset):
    source = {key: request.args[key] for key in ("image_ids", *service.FILTER_FIELDS) if request.args.get(key)}
    return _new_form(dataset, source)


@bp.post("/")
@requires("dataset:tasks")
def create(dataset):
    source = {key: request.form[key] for key in ("image_ids", *service.FILTER_FIELDS) if request.form.get(key)}
    try:
        task = service.create_task(dataset, current_user, service.plan_task(dataset, _form_fields(request.form)))
    except Invalid as error:
        return _new_form(dataset, source, error.message, error.status, values=request.form)
    return redirect(url_for("tasks.show", dataset_id=dataset.id, task_id=task.id), 303)


def _task_context(dataset, task, **extra) -> dict:
    progress = service.task_progress(task)
    job = service.build_job(task)
    return {
        "dataset": dataset, "task": task, "progress": progress, "members": service.members_of(task), "job": job,
        # Until the task is complete, unless its job failed or was cancelled (a finished job's last
        # commit may land a moment after its status).
        "candidates": dataset_service.list_members(dataset),
        "polling": not task.complete and job is not None and job.status not in (JobStatus.failed, JobStatus.cancelled),
        "manage": can(current_user, "task:manage", task), **extra,
    }


@bp.get("/<int:task_id>")
@requires("task:view")
def show(dataset, task):
    return render("tasks/show.html", "partials/tasks/_task.html", **_task_context(dataset, task))


def _changed(dataset, task, change):
    """Run a change to the task from its page; answer with the task panel and what happened."""
    try:
        notice, error, status = change(), None, 200
    except LoupeError as failure:
        notice, error, status = None, failure.message, failure.status
    if not is_htmx():
        if error:
            return render_template("tasks/show.html", **_task_context(dataset, task, error=error)), status
        return redirect(url_for("tasks.show", dataset_id=dataset.id, task_id=task.id), 303)
    return render_template("partials/tasks/_task.html", **_task_context(dataset, task, notice=notice, error=error)), status


def _member_field(name: str) -> int | None:
    """A member select: a user id, or "" for the unassigned images."""
    value = request.form.get(name, "")
    return None if value == "" else _int(value, name)


@bp.post("/<int:task_id>/reassign")
@requires("task:manage")
def reassign(dataset, task):
    def change():
        moved = service.reassign(task, {"from_member_id": _member_field("from_member_id"), "to_member_id": _member_field("to_member_id")})
        return f"{moved:,} open image{'' if moved == 1 else 's'} moved"
    return _changed(dataset, task, change)


@bp.post("/<int:task_id>/unassign")
@requires("task:manage")
def unassign(dataset, task):
    def change():
        moved = service.unassign(task, {"from_member_id": _member_field("from_member_id")})
        return f"{moved:,} open image{'' if moved == 1 else 's'} unassigned"
    return _changed(dataset, task, change)


@bp.post("/<int:task_id>/members")
@requires("task:manage")
def add_member(dataset, task):
    def change():
        member = service.add_member(task, _member_field("user_id"))
        return f"{member.user.display_name or member.user.email} joined the task"
    return _changed(dataset, task, change)


@bp.post("/<int:task_id>/members/<int:user_id>/delete")
@requires("task:manage")
def remove_member(dataset, task, user_id: int):
    def change():
        handed = service.remove_member(task, user_id)
        return f"Left the task; {handed:,} open image{'' if handed == 1 else 's'} handed back"
    return _changed(dataset, task, change)


@bp.post("/<int:task_id>/delete")
@requires("task:manage")
def delete(dataset, task):
    try:
        service.delete_task(task)
    except LoupeError as error:
        return render_template("tasks/show.html", **_task_context(dataset, task, error=error.message)), error.status
    listing = url_for("tasks.index", dataset_id=dataset.id)
    return hx_redirect(listing) if is_htmx() else redirect(listing, 303)


@work_bp.get("/work")
def my_work():
    """The signed-in person's tasks with their progress, each with Start."""
    return render_template("tasks/my_work.html", tasks=service.my_tasks(current_user))


@work_bp.get("/tasks/<int:task_id>/start")
@requires("task:work")
def start(task):
    """Open the person's next image of the task on the canvas, or say their queue is done."""
    try:
        upcoming = service.next_image(task, current_user)
    except LoupeError as error:
        return render_template("tasks/my_work.html", tasks=service.my_tasks(current_user), error=error.message), error.status
    if upcoming["image_id"] is None:
        return render_template("tasks/my_work.html", tasks=service.my_tasks(current_user), finished=task), 200
    return redirect(url_for("labeling.show", dataset_id=task.dataset_id, image_id=upcoming["image_id"], task_id=task.id), 303)
