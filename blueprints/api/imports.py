"""Imports that are not a plain image upload: an annotation file, or a ZIP of a format's folder
layout (with or without its images), applied to the dataset's images by a job."""

from flask_login import current_user
from flask_smorest.fields import Upload
from marshmallow import Schema, fields
from marshmallow.validate import Range

from blueprints.api.base import Blueprint
from blueprints.api.schemas import JobSchema
from core.permissions import requires
from formats import IMPORTS
from services import annotation_imports as service

bp = Blueprint("api-imports", __name__, url_prefix="/api/v1", description="Annotation imports (jobs)")


class ImportArgs(Schema):
    kind = fields.String(required=True, metadata={"enum": list(service.KINDS), "description": "What the file holds"})
    format = fields.String(required=True, metadata={
        "enum": list(IMPORTS),
        "description": "The file's format: " + "; ".join(f"{key}: {m.IMPORT_TITLE}" for key, m in IMPORTS.items()),
    })
    file = Upload(required=True, metadata={"minLength": 1, "description": "The annotation file, or a ZIP of the format's folder layout; "
                                           "images it holds that the dataset lacks are imported too"})
    score_threshold = fields.Float(validate=Range(0, 1), metadata={"description": "Predictions scoring below this are left out", "example": 0.5})
    coordinates = fields.String(metadata={"enum": list(service.COORDINATES), "description": "For files that do not say (CSV, COCO, VOC, "
                                          "a ZIP's annotations.csv): pixels, or percent of the image (an export made with coordinates=percent)"})
    predictions = fields.String(metadata={"enum": ["true", "false"], "description": "Import every annotation as a prediction (pre-label), scored or not"})


@bp.post("/datasets/<int:dataset_id>/imports")
@requires("dataset:import")
@bp.arguments(ImportArgs, location="multipart")
@bp.response(202, JobSchema)
@bp.alt_response(409, description="Another annotation import of this dataset is running, or the dataset is being deleted")
def create(args, dataset):
    """Start an annotation import; its job's result counts what was applied, its errors say per
    image what was not (no such image in the dataset, an unknown shape, a broken line)."""
    return service.start_import(dataset, current_user, args, args.get("file"))
