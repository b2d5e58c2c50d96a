"""Exports: start one (a job), list a dataset's, get one, download its file (with HTTP Range);
and the Rosepetal shortcut GET /datasets/{ds}/csv."""

from flask import url_for
from flask_login import current_user
from marshmallow import Schema, fields

from blueprints.api.base import Blueprint, Extended
from blueprints.api.schemas import JobSchema, Timestamp, _values
from core.files import send_object
from core.permissions import requires
from formats import EXPORTS
from models import ImageState, Split
from services import exports as service

bp = Blueprint("api-exports", __name__, url_prefix="/api/v1", description="Export files made by jobs, from the live dataset or a version")

STATUSES = ["queued", "running", "failed", "cancelled", "ready", "expired"]
BYTES = {"schema": {"type": "string", "format": "binary"}}
# What services.exports.downloadable types a file as, by its formats' extensions: a JSON file
# (Loupe JSON, COCO without images) is one document, the others bytes.
FILE_CONTENT = {
    "application/json": {"schema": {"type": "object"}},
    **{kind: BYTES for kind in ("text/csv", "application/zip", "application/octet-stream")},
}


def _one_or_list(values: list[str], description: str) -> dict:
    return {"description": description, "oneOf": [
        {"type": "string", "description": "One value or a comma-separated list"},
        {"type": "array", "items": {"type": "string", "enum": values}},
    ]}


class ExportArgs(Schema):
    format = fields.String(required=True, metadata={"enum": list(EXPORTS), "description": "Which file to make; each format exports the dataset types it can"})
    version = fields.Integer(strict=True, metadata={"minimum": 1, "description": "A released version of this dataset; the live dataset without it"})
    split = fields.Raw(metadata=_one_or_list(_values(Split), "Only images of these splits"))
    state = fields.Raw(metadata=_one_or_list(_values(ImageState), "Only images in these states"))
    label_ids = fields.List(fields.Integer(strict=True, metadata={"minimum": 1}), metadata={
        "description": "Only images with annotations of these labels, and only those annotations"})
    image_ids = fields.List(fields.Integer(strict=True, metadata={"minimum": 1}), metadata={
        "maxItems": service.MAX_IMAGE_IDS, "description": f"Only these images (a selection, at most {service.MAX_IMAGE_IDS:,}); use a filter for more"})
    coordinates = fields.String(metadata={"enum": list(service.COORDINATES), "description": "Pixels of the original image, or percent (0-100) of its size"})
    full_path = fields.Boolean(metadata={"description": "File names with their folder path, rather than bare"})
    test = fields.Integer(strict=True, metadata={"minimum": 0, "maximum": 100, "description": "Percent of images in TEST (CSV training); test + validation <= 100"})
    validation = fields.Integer(strict=True, metadata={"minimum": 0, "maximum": 100, "description": "Percent of images in VALIDATION (CSV training)"})
    tagmap = fields.String(metadata={"description": "Rename or merge labels: from:to,from:to", "example": "cat:animal,dog:animal"})
    include_images = fields.Boolean(metadata={"description": "COCO: a ZIP with the images, or the JSON alone"})
    masks = fields.Boolean(metadata={"description": "VOC: SegmentationClass and SegmentationObject PNGs rasterized from the shapes (a ZIP of a masked type always has its Masks/)"})
    yolo_shapes = fields.String(metadata={"enum": list(service.YOLO_SHAPES), "description": "YOLO: boxes (detection) or polygons (segmentation)"})
    url_expiry_s = fields.Integer(strict=True, metadata={
        "minimum": service.URL_EXPIRY_S[0], "maximum": service.URL_EXPIRY_S[1], "description": "CSV of URLs: seconds the links work"})
    crop_label_id = fields.Integer(strict=True, metadata={"minimum": 1, "description": "Crops: the label whose annotations are cut out"})


class ExportSchema(Schema):
    id = fields.Integer()
    dataset_id = fields.Integer()
    version_id = fields.Integer(allow_none=True)
    format = fields.String()
    options = fields.Dict(metadata={"description": "The options as checked and stored"})
    status = fields.String(metadata={"enum": STATUSES})
    file_name = fields.String(metadata={"description": "The download's name; empty until the file is ready"})
    byte_size = fields.Integer()
    report = fields.Dict(metadata={"description": "Counted from the written file: images, annotations, per_label, per_split, skipped"})
    created_at = Timestamp()
    expires_at = Timestamp(allow_none=True)
    download_url = fields.String(allow_none=True, metadata={"description": "Set once the file is ready"})
    job = fields.Nested(JobSchema, allow_none=True)


class ExportPageSchema(Schema):
    items = fields.List(fields.Nested(ExportSchema))
    total = fields.Integer()
    next_offset = fields.Integer(allow_none=True)


class ExportListArgs(Schema):
    limit = fields.Integer(load_default=service.PAGE, metadata={"minimum": 1, "maximum": service.PAGE})
    offset = fields.Integer(load_default=0, metadata={"minimum": 0})


class CsvShortcutArgs(Schema):
    test = fields.Integer(load_default=0, metadata={"minimum": 0, "maximum": 100, "description": "Percent of images in TEST"})
    validation = fields.Integer(load_default=0, metadata={"minimum": 0, "maximum": 100, "description": "Percent in VALIDATION; test + validation <= 100"})
    tagmap = fields.String(metadata={"description": "Rename or merge labels: from:to,from:to"})


def shown(export) -> Extended:
    status = service.status_of(export)
    url = url_for("api-exports.download", export_id=export.id) if status == "ready" else None
    return Extended(export, status=status, download_url=url)


@bp.post("/datasets/<int:dataset_id>/exports")
@requires("dataset:export")
@bp.arguments(ExportArgs)
@bp.response(202, ExportSchema)
def create(args, dataset):
    """Start an export job; poll the export (or its job) until its status is ready, then download it."""
    return shown(service.create_export(dataset, current_user, args))


@bp.get("/datasets/<int:dataset_id>/exports")
@requires("dataset:export")
@bp.arguments(ExportListArgs, location="query")
@bp.response(200, ExportPageSchema)
def index(args, dataset):
    """The dataset's exports, newest first (offset paging)."""
    exports, total = service.list_exports(dataset, args["limit"], args["offset"])
    next_offset = args["offset"] + args["limit"]
    return {"items": [shown(e) for e in exports], "total": total, "next_offset": next_offset if next_offset < total else None}


@bp.get("/datasets/<int:dataset_id>/csv")
@requires("dataset:export")
@bp.arguments(CsvShortcutArgs, location="query")
@bp.response(202, JobSchema)
def csv_shortcut(args, dataset):
    """The Rosepetal shortcut: a CSV training file export; answers with its job (result.export_id names the export)."""
    options = {"format": "csv_training", "test": args["test"], "validation": args["validation"], "tagmap": args.get("tagmap")}
    return service.create_export(dataset, current_user, options).job


@bp.get("/exports/<int:export_id>")
@requires("export:view")
@bp.response(200, ExportSchema)
def show(export):
    """One export: its status, options, report and, once ready, its download URL."""
    return shown(export)


@bp.get("/exports/<int:export_id>/download")
@requires("export:view")
@bp.doc(responses={
    200: {"description": "The export file", "content": FILE_CONTENT},
    206: {"description": "The byte range asked for with Range (a download resuming)", "content": {kind: BYTES for kind in FILE_CONTENT}},
    304: {"description": "Not modified: If-None-Match named the current ETag"},
})
@bp.alt_response(416, description="The Range asked for lies outside the file")
@bp.alt_response(409, description="The export is not ready (queued, running or failed)")
@bp.alt_response(410, description="The export expired and its file was removed or is about to be")
def download(export):
    """The export file, with Range support so a broken download resumes."""
    key, file_name, media_type = service.downloadable(export)
    return send_object(key, media_type, file_name, attachment=True)
