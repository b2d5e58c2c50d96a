"""The acceptance sampling page of a labeling task: start a sample, give a verdict on each sampled
image (buttons or the a / r keys), read the estimate and the outcome."""

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user

from core.errors import INT64_MAX, Invalid, LoupeError, parse_int
from core.htmx import hx_redirect, is_htmx, render
from core.permissions import requires
from services import grid_labeling
from services import sampling as service
from services import team_stats

bp = Blueprint("sampling", __name__, url_prefix="/datasets/<int:dataset_id>/tasks/<int:task_id>/sampling")

STRIP = 40  # sampled images shown around the current one in the strip of thumbnails


def _number(field: str):
    """A form field as a number for the service to check (blank: not given)."""
    text = request.form.get(field, "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise Invalid(f"{field} must be a number, got {text[:24]!r}", details={"field": field}) from None


def _seed():
    text = request.form.get("seed", "").strip()
    if not text:
        return None
    try:
        return parse_int(text, INT64_MAX)
    except ValueError:
        raise Invalid("seed must be a whole number (64-bit)", details={"field": "seed"}) from None


def _index(dataset, task, status: int = 200, error: str | None = None, form=None):
    return render(
        "sampling/index.html", "partials/sampling/_start.html", status,
        dataset=dataset, task=task, samples=[service.describe(sample) for sample in service.list_samples(task)],
        pending=service.pending_sample(task), error=error, form=form or {}, team_stats={"tasks": [team_stats.task_stats(task, current_user)]},
    )


@bp.get("")
@requires("dataset:sampling")
def index(dataset, task):
    return _index(dataset, task)


@bp.post("")
@requires("dataset:sampling")
def create(dataset, task):
    try:
        sample = service.start_sample(task, current_user, _number("rate"), _number("required_accuracy"), _seed())
    except LoupeError as exc:
        if exc.status not in (409, 422):
            raise
        return _index(dataset, task, exc.status, exc.message, request.form)
    target = url_for("sampling.show", dataset_id=dataset.id, task_id=task.id, sample_id=sample.id)
    return hx_redirect(target) if is_htmx() else redirect(target, 303)


def _current(items, wanted: int | None, after: int | None = None):
    """The sampled image to show: the one asked for, else the next without a verdict (after the
    one just judged, wrapping round), else the first."""
    if wanted is not None:
        chosen = next((item for item in items if item.image_id == wanted), None)
        if chosen is not None:
            return chosen
    position = next((i for i, item in enumerate(items) if item.image_id == after), -1)
    ordered = items[position + 1:] + items[: position + 1]
    return next((item for item in ordered if item.verdict is None), items[0] if items else None)


def _sample(dataset, task, sample, wanted: int | None = None, after: int | None = None, status: int = 200, error: str | None = None):
    service.sample_of_task(task, sample)
    summary, items = service.describe(sample), service.items_of(sample)
    current = _current(items, wanted, after)
    place = items.index(current) if current is not None else 0
    start = max(0, place - STRIP // 2)
    context = {
        "dataset": dataset, "task": task, "sample": sample, "summary": summary, "current": current, "place": place,
        "strip": items[start:start + STRIP], "strip_start": start, "error": error,
        "image": service.image_of(current) if current is not None else None,
        "annotations": grid_labeling.grid_annotations([current.image_id]).get(current.image_id, []) if current is not None else [],
        "labels_by_id": {label.id: label for label in grid_labeling.palette(dataset)},
    }
    return render("sampling/show.html", "partials/sampling/_sample.html", status, **context)


@bp.get("/<int:sample_id>")
@requires("dataset:sampling")
def show(dataset, task, sample):
    wanted = request.args.get("image_id", "")
    return _sample(dataset, task, sample, wanted=int(wanted) if wanted.isdigit() and len(wanted) < 19 else None)


@bp.post("/<int:sample_id>/items/<int:image_id>")
@requires("dataset:sampling")
def decide(dataset, task, sample, image):
    service.sample_of_task(task, sample)
    try:
        service.give_verdict(sample, image.id, request.form.get("verdict", ""), current_user)
    except LoupeError as exc:
        if exc.status not in (404, 409, 422):
            raise
        return _sample(dataset, task, sample, wanted=image.id, status=exc.status, error=exc.message)
    if not is_htmx():
        return redirect(url_for("sampling.show", dataset_id=dataset.id, task_id=task.id, sample_id=sample.id), 303)
    return _sample(dataset, task, sample, after=image.id)
