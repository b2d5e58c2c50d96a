"""Versions of a dataset: release (a job), list, get, compare."""

from flask_login import current_user
from marshmallow import Schema, fields

from blueprints.api.base import Blueprint, Extended
from blueprints.api.schemas import JobSchema, Timestamp
from core.errors import INT32_MAX
from core.permissions import requires
from services import versions as service

bp = Blueprint("api-versions", __name__, url_prefix="/api/v1/datasets/<int:dataset_id>/versions", description="Released versions of a dataset")


class VersionLabelSchema(Schema):
    id = fields.Integer(metadata={"description": "The live label's id at release"})
    name = fields.String()
    color = fields.String()
    position = fields.Integer()
    images = fields.Integer(metadata={"description": "Images with an annotation of the label"})
    annotations = fields.Integer()
    splits = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={"description": "split -> {images, annotations}"})


class VersionSummarySchema(Schema):
    id = fields.Integer()
    dataset_id = fields.Integer()
    name = fields.String(metadata={"description": "V001, V002, ..."})
    number = fields.Integer()
    note = fields.String()
    parent_id = fields.Integer(allow_none=True, metadata={"description": "The newest complete version before this one"})
    complete = fields.Boolean(metadata={"description": "False while its release job runs (or after it failed: run it again)"})
    job_id = fields.String(allow_none=True)
    created_by = fields.String(attribute="created_by.display_name", dump_default=None, allow_none=True)
    created_at = Timestamp()
    image_count = fields.Integer()
    annotation_count = fields.Integer()


class VersionSchema(VersionSummarySchema):
    stats = fields.Dict(metadata={"description": "splits and states -> counts; labels -> {images, annotations, splits} by label id"})
    labels = fields.List(fields.Nested(VersionLabelSchema), metadata={"description": "The label list as of release, with counts"})


class VersionPageSchema(Schema):
    items = fields.List(fields.Nested(VersionSchema))
    total = fields.Integer()
    next_cursor = fields.Integer(allow_none=True, metadata={"description": "Pass as cursor for older versions; null on the last page"})


class VersionListArgs(Schema):
    limit = fields.Integer(load_default=service.MAX_LIST, metadata={"minimum": 1, "maximum": service.MAX_LIST})
    cursor = fields.Integer(metadata={"minimum": 1, "maximum": INT32_MAX, "description": "The next_cursor of the previous page"})


class ReleaseArgs(Schema):
    note = fields.String(load_default="", metadata={"maxLength": service.MAX_NOTE, "description": "What this version is for"})


class CompareArgs(Schema):
    a = fields.Integer(required=True, metadata={"minimum": 1, "maximum": INT32_MAX, "description": "The id of the older version"})
    b = fields.Integer(required=True, metadata={"minimum": 1, "maximum": INT32_MAX, "description": "The id of the newer version"})
    limit = fields.Integer(load_default=service.MAX_LIST, metadata={"minimum": 1, "maximum": service.MAX_LIST, "description": "Images listed per kind of change"})


class ComparedImageSchema(Schema):
    image_id = fields.Integer(metadata={"description": "The live image's id"})
    file_name = fields.String()
    split = fields.Raw(metadata={"description": "Added or removed: its split; changed (when the split changed): {a, b}"})
    changes = fields.List(fields.String(metadata={"enum": list(service.PARTS)}), metadata={"description": "Changed images: what changed"})


class ComparedListSchema(Schema):
    total = fields.Integer()
    items = fields.List(fields.Nested(ComparedImageSchema), metadata={"description": "The first `limit`, in image id order"})


class CountsSchema(Schema):
    images = fields.Integer()
    annotations = fields.Integer()


class ComparedLabelSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    color = fields.String()
    a = fields.Nested(CountsSchema, metadata={"description": "In version a"})
    b = fields.Nested(CountsSchema, metadata={"description": "In version b"})


class CompareSchema(Schema):
    a = fields.Nested(VersionSummarySchema)
    b = fields.Nested(VersionSummarySchema)
    added = fields.Nested(ComparedListSchema, metadata={"description": "Images in b and not in a"})
    removed = fields.Nested(ComparedListSchema, metadata={"description": "Images in a and not in b"})
    changed = fields.Nested(ComparedListSchema, metadata={"description": "Images in both whose split, tags or annotations differ"})
    labels = fields.List(fields.Nested(ComparedLabelSchema))


def _with_labels(version):
    return Extended(version, labels=service.labels_with_stats(version))


@bp.get("")
@requires("dataset:export")
@bp.arguments(VersionListArgs, location="query")
@bp.response(200, VersionPageSchema)
def index(args, dataset):
    """The dataset's released (complete) versions, newest first."""
    versions, total, next_cursor = service.list_versions(dataset, args["limit"], args.get("cursor"))
    return {"items": [_with_labels(v) for v in versions], "total": total, "next_cursor": next_cursor}


@bp.post("")
@requires("dataset:export")
@bp.arguments(ReleaseArgs)
@bp.response(202, JobSchema)
def release(args, dataset):
    """Release the next version (V001, V002...): a job snapshots the images, their splits and
    annotations, and the labels; its result names the version (version_id)."""
    return service.release_version(dataset, current_user, args["note"])


@bp.get("/compare")
@requires("dataset:export")
@bp.arguments(CompareArgs, location="query")
@bp.response(200, CompareSchema)
@bp.alt_response(409, description="A version is still being released")
def compare(args, dataset):
    """What changed from version a to version b: images added, removed and changed, and label counts."""
    a, b = service.get_version(dataset, args["a"]), service.get_version(dataset, args["b"])
    return service.compare(dataset, a, b, args["limit"])


@bp.get("/<int:version_id>")
@requires("dataset:export")
@bp.response(200, VersionSchema)
def show(dataset, version_id: int):
    """One version with its labels and statistics (complete or still being released)."""
    return _with_labels(service.get_version(dataset, version_id, complete=False))
