"""Acceptance sampling of a labeling task: draw a sample, give verdicts, read the estimate (services/sampling.py)."""

from flask import url_for
from flask_login import current_user
from marshmallow import Schema, fields

from blueprints.api.base import Blueprint
from blueprints.api.schemas import JobSchema, Timestamp
from core.errors import INT64_MAX
from core.permissions import requires
from models import SampleOutcome, Verdict
from services import sampling as service

task_bp = Blueprint(
    "api-sampling", __name__, url_prefix="/api/v1/tasks/<int:task_id>/samples", description="Acceptance samples of a labeling task",
)
bp = Blueprint("api-samples", __name__, url_prefix="/api/v1/samples", description="One acceptance sample: its images, verdicts and estimate")

FRACTION = {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1}  # OpenAPI 3.0: a flag
RATE_DESCRIPTION = "Share of the task's accepted images to check, above 0 and at most 1; the task's sampling_rate by default"


def _image_url(endpoint: str):
    def url(item) -> str:
        return url_for(endpoint, dataset_id=item.dataset_id, image_id=item.image_id)

    return url


class SampleItemSchema(Schema):
    image_id = fields.Integer()
    verdict = fields.String(allow_none=True, metadata={"enum": [v.value for v in Verdict], "description": "null until given"})
    decided_by_id = fields.Integer(allow_none=True)
    decided_at = Timestamp(allow_none=True)
    thumbnail_url = fields.Function(_image_url("api-images.thumbnail"))
    file_url = fields.Function(_image_url("api-images.file"))


class SampleSchema(Schema):
    id = fields.Integer()
    task_id = fields.Integer()
    rate = fields.Float()
    required_accuracy = fields.Float()
    lot_size = fields.Integer(metadata={"description": "The task's accepted images when the sample was drawn"})
    size = fields.Integer(metadata={"description": "Images in the sample: ceil(rate x lot_size), at least 1"})
    outcome = fields.String(metadata={"enum": [o.value for o in SampleOutcome], "description": "pending until every image has a verdict"})
    decided = fields.Integer(metadata={"description": "Images with a verdict"})
    accepted = fields.Integer()
    rejected = fields.Integer()
    accuracy = fields.Float(allow_none=True, metadata={"description": "accepted / decided, while pending too; null before any verdict"})
    interval_low = fields.Float(allow_none=True, metadata={"description": "95% Wilson confidence interval of the accuracy"})
    interval_high = fields.Float(allow_none=True)
    created_by_id = fields.Integer(allow_none=True)
    created_at = Timestamp()
    decided_at = Timestamp(allow_none=True)
    lot_remaining = fields.Integer(metadata={"description": "Failed: images of the lot still accepted, not yet sent back to review"})
    job = fields.Nested(JobSchema, allow_none=True, metadata={"description": "Failed: the job sending the lot back to review"})
    # Not read as "items": the answer is a dict, whose own .items the schema would find instead.
    sample_items = fields.List(fields.Nested(SampleItemSchema), data_key="items", metadata={"description": "On a single sample: its images in id order"})


class SamplePageSchema(Schema):
    items = fields.List(fields.Nested(SampleSchema))
    total = fields.Integer()


# Raw, not Float: the service checks the values, so the page's form and the API refuse alike.
class SampleArgs(Schema):
    rate = fields.Raw(allow_none=True, metadata={**FRACTION, "description": RATE_DESCRIPTION})
    required_accuracy = fields.Raw(allow_none=True, metadata={**FRACTION, "description": "Share of right labels the lot needs to pass; 0.95 by default"})
    seed = fields.Raw(allow_none=True, metadata={
        "type": "integer", "minimum": -INT64_MAX - 1, "maximum": INT64_MAX,
        "description": "The same seed draws the same sample of the same accepted images; random by default",
    })


class VerdictArgs(Schema):
    verdict = fields.Raw(required=True, metadata={
        "type": "string", "enum": [v.value for v in Verdict], "description": "accept: the label is right; reject: it is wrong",
    })


class _Item:
    """A sampled image as the schema dumps it (its URLs need the dataset)."""

    def __init__(self, item, dataset_id: int):
        self.dataset_id, self.image_id, self.verdict = dataset_id, item.image_id, item.verdict
        self.decided_by_id, self.decided_at = item.decided_by_id, item.decided_at


def _answer(sample, dataset_id: int, with_items: bool = False) -> dict:
    out = service.describe(sample)
    if with_items:
        out["sample_items"] = [_Item(item, dataset_id) for item in service.items_of(sample)]
    return out


@task_bp.post("")
@requires("task:sampling")
@task_bp.arguments(SampleArgs)
@task_bp.response(201, SampleSchema)
@task_bp.alt_response(409, description="The task has a pending sample already, or no accepted image")
@task_bp.alt_response(422, description="A rate, required accuracy or seed out of range")
def create(args, task):
    """Draw a random sample of the task's accepted images (owner or site admin)."""
    sample = service.start_sample(task, current_user, args.get("rate"), args.get("required_accuracy"), args.get("seed"))
    return _answer(sample, task.dataset_id, with_items=True)


@task_bp.get("")
@requires("task:sampling")
@task_bp.response(200, SamplePageSchema)
def index(task):
    """The task's samples, newest first, with their estimates and outcomes."""
    samples = service.list_samples(task)
    return {"items": [_answer(sample, task.dataset_id) for sample in samples], "total": len(samples)}


@bp.get("/<int:sample_id>")
@requires("sample:view")
@bp.response(200, SampleSchema)
def show(sample):
    """A sample: its images with their verdicts, the estimate with its interval, the outcome."""
    return _answer(sample, service.dataset_id_of(sample), with_items=True)


@bp.post("/<int:sample_id>/items/<int:image_id>")
@requires("sample:decide")
@bp.arguments(VerdictArgs)
@bp.response(200, SampleSchema)
@bp.alt_response(409, description="The sample is decided; verdicts no longer change")
@bp.alt_response(422, description="An unknown verdict")
def decide(args, sample, image_id: int):
    """Give (or change) the verdict on one sampled image; the last one decides the sample, and a
    failed sample starts the job that sends its lot back to review."""
    sample = service.give_verdict(sample, image_id, args["verdict"], current_user)
    return _answer(sample, service.dataset_id_of(sample))
