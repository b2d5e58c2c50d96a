"""Labels of a dataset: list, create, update, reorder, copy, crops; delete and merge are jobs."""

from flask import current_app
from flask_login import current_user

from blueprints.api.base import Blueprint, Extended
from blueprints.api.schemas import (
    CropListArgs, CropPageSchema, JobSchema, LabelCopyArgs, LabelCopySchema, LabelCreateArgs, LabelMergeArgs, LabelOrderArgs, LabelSchema,
    LabelUpdateArgs,
)
from core.permissions import requires
from services import crops as crop_service
from services import labels as service

bp = Blueprint(
    "api-labels", __name__, url_prefix="/api/v1/datasets/<int:dataset_id>/labels",
    description="Labels (classes) of a dataset; merging and deleting rewrite annotations in a job",
)

NAME_TAKEN = "Another label has this name or shortcut, or is already the unclassified one"


def as_seen(dataset, labels) -> list:
    """The labels with their counters as the caller may see them (a labeler's: over their assigned images)."""
    counters = service.label_counters(dataset, labels, current_user)
    return [Extended(label, **counters[label.id]) for label in labels]


@bp.get("")
@requires("dataset:view")
@bp.response(200, LabelSchema(many=True))
def index(dataset):
    """The dataset's labels in display order, with their counters (a labeler's: over their assigned images)."""
    return as_seen(dataset, service.list_labels(dataset))


@bp.post("")
@requires("dataset:labels")
@bp.arguments(LabelCreateArgs)
@bp.response(201, LabelSchema)
@bp.alt_response(409, description=NAME_TAKEN)
def create(args, dataset):
    """Add a label (manager or above)."""
    return service.create_label(dataset, **args)


@bp.patch("/<int:label_id>")
@requires("dataset:labels")
@bp.arguments(LabelUpdateArgs)
@bp.response(200, LabelSchema)
@bp.alt_response(409, description=NAME_TAKEN)
def update(changes, dataset, label_id: int):
    """Change a label's fields; all are checked before any is saved."""
    return service.update_label(dataset, service.get_label(dataset, label_id), **changes)


@bp.delete("/<int:label_id>")
@requires("dataset:labels")
@bp.response(202, JobSchema)
def delete(dataset, label_id: int):
    """Delete a label and its annotations in a job (a revision per changed image)."""
    return service.request_delete(dataset, service.get_label(dataset, label_id), current_user)


@bp.post("/merge")
@requires("dataset:labels")
@bp.arguments(LabelMergeArgs)
@bp.response(202, JobSchema)
def merge(args, dataset):
    """Merge labels into the one named `name` (existing or new), in a job; the merged labels are deleted."""
    return service.request_merge(dataset, args["label_ids"], args["name"], args.get("color"), current_user)


@bp.post("/reorder")
@requires("dataset:labels")
@bp.arguments(LabelOrderArgs)
@bp.response(200, LabelSchema(many=True))
@bp.alt_response(409, description="A label of the dataset is being deleted or merged")
def reorder(args, dataset):
    """Set the display order: every label id of the dataset, in the new order."""
    return service.reorder_labels(dataset, args["label_ids"])


@bp.post("/copy")
@requires("dataset:labels")
@bp.arguments(LabelCopyArgs)
@bp.response(200, LabelCopySchema)
def copy(args, dataset):
    """Copy the labels of another dataset the caller may see; names already here are skipped."""
    result = service.copy_labels(dataset, args["from_dataset_id"], current_user)
    return {**result, "labels": service.list_labels(dataset)}


@bp.post("/refresh-counters")
@requires("dataset:labels")
@bp.response(202, JobSchema)
def refresh_counters(dataset):
    """Recompute every label's image and annotation counters (and the dataset's), in a job."""
    return service.request_refresh_counters(dataset, current_user)


@bp.get("/<int:label_id>/crops")
@requires("dataset:export")
@bp.arguments(CropListArgs, location="query")
@bp.response(200, CropPageSchema)
def crops(args, dataset, label_id: int):
    """One page of WebP crops of the label's boxes, polygons and circles (their bounding boxes), as
    data URIs in annotation order; an export of image pixels, so manager or above."""
    label = service.get_label(dataset, label_id)
    max_pixels = current_app.config["LOUPE_MAX_IMAGE_PIXELS"]
    items, next_cursor = crop_service.crop_page(label, args["cursor"], args["limit"], max_pixels)
    return {"items": items, "total": crop_service.count_crops(label), "next_cursor": next_cursor}
