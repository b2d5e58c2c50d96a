"""The Labels page: inline create and edit, reorder, copy from another dataset, merge, delete, counters."""

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from core.errors import INT32_MAX, Conflict, Invalid, LoupeError, NotFound, parse_int
from core.extensions import db
from core.htmx import is_htmx, render
from core.permissions import can, requires, visible_datasets
from models import Dataset
from services import labels as service
from services.jobs import reconcile

bp = Blueprint("labels", __name__, url_prefix="/datasets/<int:dataset_id>/labels")

TRUE = ("true", "yes", "1", "on", "checked")
FALSE = ("false", "no", "0", "off", "unchecked")


# ---- forms: the page's fields to the service's values -----------------------------------------------


def _form_of(label) -> dict:
    """A label as the edit form shows it."""
    return {
        "name": label.name, "color": label.color, "shortcut": label.shortcut or "", "default_shape": label.default_shape,
        "with_text": label.with_text, "unclassified": label.unclassified,
        "attributes": [
            {
                "name": a.get("name", ""), "type": a.get("type", "text"), "values": ", ".join(a.get("values") or []),
                "default": "" if a.get("default") is None else str(a["default"]).lower() if isinstance(a["default"], bool) else str(a["default"]),
            }
            for a in label.attributes or []
        ],
    }


def _submitted() -> dict:
    """The form as sent, to show it again next to an error."""
    form = request.form
    rows = zip(form.getlist("attr_name"), form.getlist("attr_type"), form.getlist("attr_values"), form.getlist("attr_default"))
    return {
        "name": form.get("name", ""), "color": form.get("color", ""), "shortcut": form.get("shortcut", ""),
        "default_shape": form.get("default_shape", ""), "with_text": form.get("with_text") == "1",
        "unclassified": form.get("unclassified") == "1",
        "attributes": [
            {"name": name, "type": kind, "values": values, "default": default}
            for name, kind, values, default in rows if name.strip() or values.strip() or default.strip()
        ],
    }


def _typed_default(kind: str, text: str):
    text = text.strip()
    if not text:
        return None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return text  # the service says what is wrong with it
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
    if kind == "checkbox":
        return True if text.lower() in TRUE else False if text.lower() in FALSE else text
    return text


def _fields(submitted: dict) -> dict:
    """The submitted form as label fields for services.labels."""
    attributes = []
    for row in submitted["attributes"]:
        values = [v.strip() for v in row["values"].split(",") if v.strip()]
        attribute = {"name": row["name"], "type": row["type"], "default": _typed_default(row["type"], row["default"])}
        if values or row["type"] == "select":
            attribute["values"] = values
        attributes.append(attribute)
    return {
        "name": submitted["name"], "color": submitted["color"], "shortcut": submitted["shortcut"],
        "default_shape": submitted["default_shape"], "with_text": submitted["with_text"],
        "unclassified": submitted["unclassified"], "attributes": attributes,
    }


# ---- rendering ---------------------------------------------------------------------------------------


def _copy_sources(dataset):
    if not can(current_user, "dataset:labels", dataset):
        return []
    query = visible_datasets(select(Dataset), current_user).where(Dataset.id != dataset.id).order_by(Dataset.name, Dataset.id)
    return db.session.scalars(query.limit(500)).all()


def _context(dataset, **extra) -> dict:
    labels = service.list_labels(dataset)
    return {
        "dataset": dataset, "labels": labels, "counters": service.label_counters(dataset, labels, current_user),
        "shapes": service.allowed_shapes(dataset),
        "attribute_types": service.ATTRIBUTE_TYPES, "copy_sources": _copy_sources(dataset),
        "create_form": {"color": "#e6194b", "default_shape": service.allowed_shapes(dataset)[0], "attributes": []},
        **extra,
    }


def _list(dataset, status: int = 200, **extra):
    return render("labels/index.html", "partials/labels/_list.html", status, **_context(dataset, **extra))


def _back(dataset):
    return redirect(url_for("labels.index", dataset_id=dataset.id), 303)


def _job_started(dataset, job):
    if is_htmx():
        return render("labels/index.html", "partials/labels/_job.html", job=job, dataset=dataset)
    return redirect(url_for("jobs.show", job_id=job.id), 303)


def _job_error(dataset, exc: LoupeError):
    if is_htmx():
        return render("labels/index.html", "partials/labels/_job.html", exc.status, job=None, dataset=dataset, error=exc.message)
    return _list(dataset, exc.status, job_error=exc.message)


# ---- routes --------------------------------------------------------------------------------------------


@bp.get("/")
@requires("dataset:view")
def index(dataset):
    return _list(dataset)


@bp.post("/")
@requires("dataset:labels")
def create(dataset):
    submitted = _submitted()
    try:
        service.create_label(dataset, **_fields(submitted))
    except LoupeError as exc:
        if exc.status not in (409, 422):
            raise
        return _list(dataset, 422, create_form=submitted, create_error=exc.message)
    return _list(dataset) if is_htmx() else _back(dataset)


@bp.get("/<int:label_id>")
@requires("dataset:view")
def show(dataset, label_id: int):
    label = service.get_label(dataset, label_id)
    return render("labels/index.html", "partials/labels/_row.html", **_context(dataset, label=label))


@bp.get("/<int:label_id>/edit")
@requires("dataset:labels")
def edit(dataset, label_id: int):
    label = service.get_label(dataset, label_id)
    return render("labels/index.html", "partials/labels/_edit_row.html", **_context(dataset, label=label, editing=label.id, form=_form_of(label)))


@bp.post("/<int:label_id>")
@requires("dataset:labels")
def update(dataset, label_id: int):
    label = service.get_label(dataset, label_id)
    submitted = _submitted()
    try:
        service.update_label(dataset, label, **_fields(submitted))
    except LoupeError as exc:
        if exc.status not in (409, 422):
            raise
        db.session.rollback()
        return render(
            "labels/index.html", "partials/labels/_edit_row.html", 422,
            **_context(dataset, label=label, editing=label.id, form=submitted, edit_error=exc.message),
        )
    if not is_htmx():
        return _back(dataset)
    return render("labels/index.html", "partials/labels/_row.html", **_context(dataset, label=label))


@bp.post("/reorder")
@requires("dataset:labels")
def reorder(dataset):
    """Either the full order (label_ids, sent by drag and drop) or one label moved one place (label_id, direction up/down)."""
    try:
        if request.form.getlist("label_ids"):
            try:
                order = [parse_int(i, INT32_MAX) for i in request.form.getlist("label_ids")]
            except ValueError:
                raise Invalid("label_ids must be label ids", details={"field": "label_ids"}) from None
            service.reorder_labels(dataset, order)
        else:
            service.move_label(dataset, request.form.get("label_id", ""), request.form.get("direction", ""))
    except (Invalid, NotFound, Conflict) as exc:
        if not is_htmx():
            raise
        # Show the order as stored (someone may have added or removed a label meanwhile) and say
        # why; a label gone meanwhile is a conflict, so htmx swaps the answer in like a 422.
        status = 409 if isinstance(exc, NotFound) else exc.status
        return _list(dataset, status, reorder_error=f"The order was not saved: {exc.message}")
    return _list(dataset) if is_htmx() else _back(dataset)


@bp.post("/copy")
@requires("dataset:labels")
def copy(dataset):
    try:
        source_id = parse_int(request.form.get("from_dataset_id", ""), INT32_MAX)
    except ValueError:
        return _list(dataset, 422, copy_error="Choose a dataset to copy labels from")
    try:
        result = service.copy_labels(dataset, source_id, current_user)
    except LoupeError as exc:
        if exc.status not in (404, 409, 422):
            raise
        return _list(dataset, 422 if exc.status != 404 else 404, copy_error=exc.message)
    return _list(dataset, notice=result["message"]) if is_htmx() else _back(dataset)


@bp.post("/merge")
@requires("dataset:labels")
def merge(dataset):
    try:
        label_ids = [parse_int(i, INT32_MAX) for i in request.form.getlist("label_ids")]
        job = service.request_merge(dataset, label_ids, request.form.get("name", ""), request.form.get("color") or None, current_user)
    except ValueError:
        return _job_error(dataset, Invalid("label_ids must be label ids"))
    except LoupeError as exc:
        if exc.status not in (404, 409, 422):
            raise
        return _job_error(dataset, exc)
    return _job_started(dataset, job)


@bp.post("/<int:label_id>/delete")
@requires("dataset:labels")
def delete(dataset, label_id: int):
    job = service.request_delete(dataset, service.get_label(dataset, label_id), current_user)
    return _job_started(dataset, job)


@bp.post("/refresh-counters")
@requires("dataset:labels")
def refresh_counters(dataset):
    return _job_started(dataset, service.request_refresh_counters(dataset, current_user))


@bp.get("/jobs/<job_id>")
@requires("job:view")
def job_status(dataset, job):
    """A label job's progress; it polls itself while active and tells the list to reload when done."""
    if job.dataset_id != dataset.id:
        raise NotFound("Job not found")
    reconcile(job)
    trigger = None if job.status.active else "labelsChanged"
    if not is_htmx():
        return redirect(url_for("jobs.show", job_id=job.id), 303)
    return render("labels/index.html", "partials/labels/_job.html", trigger=trigger, job=job, dataset=dataset)
