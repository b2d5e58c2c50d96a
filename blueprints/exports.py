"""The Exports page: choose a format and its options, from the live dataset or a version, start
the job, watch it, and download past exports (the API's download route, with Range)."""

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user

from core.errors import LoupeError
from core.htmx import fragment, is_htmx, render
from core.permissions import requires
from formats import EXPORTS
from models import ImageState, Split
from services import exports as service
from services.labels import list_labels

bp = Blueprint("exports", __name__, url_prefix="/datasets/<int:dataset_id>/exports")

# How each format option is asked on the page: (label, kind, choices).
OPTION_FIELDS = {
    "coordinates": ("Coordinates", "select", service.COORDINATES),
    "full_path": ("File names with their folder path", "checkbox", ()),
    "include_images": ("Include the images (a ZIP)", "checkbox", ()),
    "masks": ("Segmentation masks (PNG)", "checkbox", ()),
    "yolo_shapes": ("Shapes", "select", service.YOLO_SHAPES),
    "test": ("Test %", "number", ()),
    "validation": ("Validation %", "number", ()),
    "url_expiry_s": ("Links work for (seconds)", "number", ()),
    "crop_label_id": ("Label to crop", "label", ()),
}
LIST_FIELDS = ("split", "state", "label_ids")


def _chosen_format(dataset):
    available = service.formats_for(dataset)
    key = request.values.get("format")
    return next((fmt for fmt in available if fmt.KEY == key), available[0] if available else None), available


def _context(dataset, **extra) -> dict:
    chosen, available = _chosen_format(dataset)
    exports, _ = service.list_exports(dataset)
    return {
        "dataset": dataset, "formats": available, "chosen": chosen, "option_fields": OPTION_FIELDS,
        "versions": service.released_versions(dataset), "splits": [s.value for s in Split],
        "states": [s.value for s in ImageState], "labels": list_labels(dataset),
        "exports": exports, "status_of": service.status_of, "poll": service.exporting(dataset), **extra,
    }


def _submitted(fmt) -> dict:
    """The form as export options: the chosen format's own fields and the filters, empty ones left out."""
    form = request.form
    raw = {"format": form.get("format", "")}
    for name in ("version", "tagmap"):
        if form.get(name, "").strip():
            raw[name] = form[name]
    for name in LIST_FIELDS:
        if form.getlist(name):
            raw[name] = form.getlist(name)
    # Fields of other formats may linger in a form whose format was changed: only this one's count.
    for name in fmt.OPTIONS if fmt is not None else ():
        values = form.getlist(name)
        if values and values[-1] != "":  # a checkbox sends its hidden "false", then "true" when ticked
            raw[name] = values[-1]
    return raw


@bp.get("/")
@requires("dataset:export")
def index(dataset):
    return render("exports/index.html", "partials/exports/_list.html", **_context(dataset))


@bp.get("/options")
@requires("dataset:export")
def options(dataset):
    return fragment("partials/exports/_options.html", **_context(dataset))


@bp.get("/list")
@requires("dataset:export")
def listing(dataset):
    return fragment("partials/exports/_list.html", **_context(dataset))


@bp.post("/")
@requires("dataset:export")
def create(dataset):
    fmt = EXPORTS.get(request.form.get("format", ""))
    try:
        export = service.create_export(dataset, current_user, _submitted(fmt))
    except LoupeError as exc:
        if exc.status not in (409, 422):
            raise
        if is_htmx():
            return fragment("partials/exports/_started.html", exc.status, error=exc.message, export=None)
        return render("exports/index.html", "partials/exports/_list.html", exc.status, **_context(dataset, error=exc.message))
    if is_htmx():
        return fragment("partials/exports/_started.html", export=export, error=None, trigger="exportsChanged")
    return redirect(url_for("exports.index", dataset_id=dataset.id), 303)
