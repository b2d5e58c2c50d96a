"""Labeling tasks: create (a job deals the images out), list, get, delete; the caller's next image,
"Later"; reassign, unassign and the task's members."""

from flask_login import current_user
from marshmallow import Schema, fields, validate

from blueprints.api.annotations import AnnotationSchema, AnnotationSetSchema, LifecycleArgs, PersonSchema
from blueprints.api.base import Blueprint, Extended
from blueprints.api.schemas import Timestamp, name_rules
from core.errors import INT32_MAX, INT64_MAX, Invalid
from core.permissions import requires
from core.extensions import db
from models import Image, ImageState, TaskStrategy
from services import reviews as review_service
from services import repetition as repetition_service
from services import tasks as service

bp = Blueprint("api-tasks", __name__, url_prefix="/api/v1/datasets/<int:dataset_id>/tasks", description="Labeling tasks of a dataset")
task_bp = Blueprint("api-task", __name__, url_prefix="/api/v1/tasks/<int:task_id>", description="One labeling task and the caller's queue in it")
repetition_bp = Blueprint(
    "api-repetition", __name__, url_prefix="/api/v1/datasets/<int:dataset_id>/images/<int:image_id>",
    description="Tasks with repetition above 1: every labeler's version of an image, their agreement, keeping or merging them",
)

ImageIds = fields.List(fields.Integer(strict=True, metadata={"minimum": 1, "maximum": INT64_MAX}), metadata={"maxItems": service.MAX_SELECTION})


class TaskPersonSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    display_name = fields.String()


class TaskMemberSchema(TaskPersonSchema):
    open = fields.Integer(metadata={"description": "Images open in their queue"})
    submitted = fields.Integer(metadata={"description": "Images they handed in"})


class TaskProgressSchema(Schema):
    images = fields.Integer(metadata={"description": "Images in the task"})
    states = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={"description": "Image state -> images of the task in it"})
    unassigned = fields.Integer(metadata={"description": "Open images nobody holds (handed back, or unassigned)"})


class TaskSchema(Schema):
    id = fields.Integer()
    dataset_id = fields.Integer()
    name = fields.String()
    strategy = fields.Enum(TaskStrategy, by_value=True)
    batch_size = fields.Integer(allow_none=True)
    repetition = fields.Integer()
    review_required = fields.Boolean()
    sampling_rate = fields.Float()
    workforce_id = fields.Integer(allow_none=True)
    image_count = fields.Integer(metadata={"description": "Images dealt out so far"})
    complete = fields.Boolean(metadata={"description": "False while its job deals the images out"})
    job_id = fields.String(allow_none=True, metadata={"description": "The job that builds the task: GET /api/v1/jobs/{id}"})
    created_at = Timestamp()
    members = fields.List(fields.Nested(TaskMemberSchema))
    progress = fields.Nested(TaskProgressSchema)


class TaskCreateArgs(Schema):
    name = fields.String(required=True, metadata=name_rules(service.MAX_NAME))
    image_ids = ImageIds
    member_ids = fields.List(fields.Integer(strict=True, metadata={"minimum": 1, "maximum": INT64_MAX}), metadata={"maxItems": service.MAX_MEMBERS})
    workforce_id = fields.Integer(strict=True, metadata={"minimum": 1, "maximum": INT32_MAX, "description": "A workforce attached to the dataset: its labelers"})
    strategy = fields.String(validate=validate.OneOf([s.value for s in TaskStrategy]), metadata={"description": "round_robin (default) or batch"})
    batch_size = fields.Integer(strict=True, metadata={"minimum": 1, "maximum": service.MAX_BATCH, "description": "Images per labeler in a row (batch)"})
    repetition = fields.Integer(strict=True, metadata={"minimum": 1, "maximum": INT32_MAX, "description": "How many labelers see each image (1 for now)"})
    review_required = fields.Boolean(metadata={"description": "Submitted images wait for review (default), or are accepted at once"})
    sampling_rate = fields.Float(metadata={"minimum": 0, "maximum": 1, "description": "Share of accepted images drawn for acceptance sampling"})
    split = fields.String(metadata={"description": "Without image_ids: the grid's filter; no filter at all takes every image"})
    state = fields.String()
    folder = fields.String()
    search = fields.String()
    tag = fields.String()


class NextSchema(Schema):
    image_id = fields.Integer(allow_none=True, metadata={"description": "The next open image; null when the queue is empty"})
    number = fields.Integer(metadata={"description": "Its place: n of total"})
    total = fields.Integer(metadata={"description": "The caller's images in the task"})
    submitted = fields.Integer()
    open = fields.Integer()
    rejected = fields.Integer(metadata={"description": "Open images a reviewer sent back"})
    rejection = fields.Dict(allow_none=True, metadata={"description": "When a reviewer sent the image back: their comment, who, when"})


class LaterArgs(Schema):
    image_id = fields.Integer(required=True, strict=True, metadata={"minimum": 1, "maximum": INT64_MAX})


class MoveArgs(Schema):
    from_member_id = fields.Integer(allow_none=True, strict=True, metadata={"minimum": 1, "maximum": INT32_MAX, "description": "Whose open images; null: the unassigned ones"})
    image_ids = ImageIds


class ReassignArgs(MoveArgs):
    to_member_id = fields.Integer(required=True, strict=True, metadata={"minimum": 1, "maximum": INT32_MAX, "description": "A member of the task"})


class MovedSchema(Schema):
    moved = fields.Integer(metadata={"description": "Open images that moved"})


class AddMemberArgs(Schema):
    user_id = fields.Integer(required=True, strict=True, metadata={"minimum": 1, "maximum": INT32_MAX, "description": "A member of the dataset"})


def _described(task):
    progress = service.task_progress(task)
    counts = progress.pop("members")
    members = [
        Extended(user, **counts.get(user.id, {"open": 0, "submitted": 0})) for user in service.members_of(task)
    ]
    return Extended(task, members=members, progress=progress)


@bp.get("")
@requires("dataset:view")
@bp.response(200, TaskSchema(many=True))
def index(dataset):
    """The dataset's tasks, newest first (a labeler: the tasks they work on)."""
    return [_described(task) for task in service.tasks_of(dataset, current_user)]


@bp.post("")
@requires("dataset:tasks")
@bp.arguments(TaskCreateArgs)
@bp.response(202, TaskSchema)
def create(args, dataset):
    """Make a task of the images named (image_ids) or of every image the grid's filter matches,
    for named members or a workforce's labelers; a job deals them out (job_id). Images another
    task holds are left out."""
    task = service.create_task(dataset, current_user, service.plan_task(dataset, args))
    return _described(task)


@task_bp.get("")
@requires("task:view")
@task_bp.response(200, TaskSchema)
def show(task):
    """The task with its progress: images by state, and each member's open and handed-in images."""
    return _described(task)


@task_bp.delete("")
@requires("task:manage")
@task_bp.response(204)
@task_bp.alt_response(409, description="The task is still being built")
def delete(task):
    """Delete the task; its images keep their annotations and states."""
    service.delete_task(task)


@task_bp.get("/next")
@requires("task:work")
@task_bp.response(200, NextSchema)
@task_bp.alt_response(409, description="The task is still being built")
def next_image(task):
    """The caller's next open image (images a reviewer sent back first), with their place in the task."""
    return _with_rejection(service.next_image(task, current_user))


def _with_rejection(upcoming: dict) -> dict:
    image = db.session.get(Image, upcoming["image_id"]) if upcoming["image_id"] else None
    rejected = image is not None and image.state == ImageState.rejected
    return {**upcoming, "rejection": review_service.latest_rejection(image) if rejected else None}


@task_bp.post("/later")
@requires("task:work")
@task_bp.arguments(LaterArgs)
@task_bp.response(200, NextSchema)
@task_bp.alt_response(409, description="The task is still being built")
def later(args, task):
    """Put an open image at the end of the caller's queue (it stays unlabeled and open); the next image."""
    return _with_rejection(service.later(task, current_user, args["image_id"]))


@task_bp.post("/reassign")
@requires("task:manage")
@task_bp.arguments(ReassignArgs)
@task_bp.response(200, MovedSchema)
def reassign(args, task):
    """Move open images (a member's, the unassigned ones, or those named) to another member of the task."""
    return {"moved": service.reassign(task, args)}


@task_bp.post("/unassign")
@requires("task:manage")
@task_bp.arguments(MoveArgs)
@task_bp.response(200, MovedSchema)
def unassign(args, task):
    """Take open images away from their labelers; they wait, unassigned, to be reassigned."""
    return {"moved": service.unassign(task, args)}


@task_bp.post("/members")
@requires("task:manage")
@task_bp.arguments(AddMemberArgs)
@task_bp.response(201, TaskPersonSchema)
@task_bp.alt_response(409, description="Already a member of the task")
def add_member(args, task):
    """Add a member of the dataset to the task, to reassign images to them."""
    return service.add_member(task, args["user_id"]).user


@task_bp.delete("/members/<int:user_id>")
@requires("task:manage")
@task_bp.response(200, MovedSchema)
def remove_member(task, user_id: int):
    """Take a member off the task; their open images go back unassigned."""
    return {"moved": service.remove_member(task, user_id)}


# ---- repetition: each labeler's version of an image ---------------------------------------------


class VersionArgs(Schema):
    # Raw, as the image's own replace: the service names the annotation and field at fault.
    revision = fields.Raw(required=True, metadata={"type": "integer", "minimum": 0, "maximum": INT32_MAX, "description": "The version's revision the change is based on"})
    annotations = fields.Raw(required=True, metadata={"type": "array", "items": {"$ref": "#/components/schemas/Annotation"}})


class LabelerVersionSchema(Schema):
    labeler = fields.Nested(PersonSchema, allow_none=True)
    labeler_id = fields.Integer(allow_none=True)
    submitted = fields.Boolean(metadata={"description": "Handed in (only handed-in versions count for agreement, keep and merge)"})
    annotations = fields.List(fields.Nested(AnnotationSchema))


class LabelerVersionsSchema(Schema):
    versions = fields.List(fields.Nested(LabelerVersionSchema))
    agreement = fields.Float(allow_none=True, metadata={"description": "0 to 1, over the handed-in versions; null with fewer than two"})


class KeepArgs(Schema):
    labeler_id = fields.Integer(strict=True, metadata={"minimum": 1, "maximum": INT32_MAX, "description": "Keep this labeler's version"})
    merge = fields.Boolean(metadata={"description": "Or merge every handed-in version (matching shapes once, the classes all name)"})
    revision = fields.Raw(metadata={"type": "integer", "minimum": 0, "maximum": INT32_MAX, "description": "Optional: refuse with 409 if someone saved since"})


@task_bp.get("/images/<int:image_id>/version")
@requires("task:work")
@task_bp.response(200, AnnotationSetSchema)
def show_version(task, image_id: int):
    """The caller's own version of an image of a task that repeats images."""
    return repetition_service.get_version(task, current_user, image_id)


@task_bp.put("/images/<int:image_id>/version")
@requires("task:work")
@task_bp.arguments(VersionArgs)
@task_bp.response(200, AnnotationSetSchema)
@task_bp.alt_response(409, description="Saved elsewhere since that revision, or already handed in")
def save_version(args, task, image_id: int):
    """Replace the caller's version (the other labelers never see it)."""
    return repetition_service.save_version(task, current_user, image_id, args["annotations"], args["revision"])


@task_bp.post("/images/<int:image_id>/version/submit")
@requires("task:work")
@task_bp.arguments(LifecycleArgs)
@task_bp.response(200, AnnotationSetSchema)
@task_bp.alt_response(409, description="Already handed in, or the version moved on")
def submit_version(args, task, image_id: int):
    """Hand the caller's version in; the last of the image's versions sends it to review."""
    return repetition_service.submit_version(task, current_user, image_id, args.get("revision"))


@task_bp.post("/images/<int:image_id>/version/skip")
@requires("task:work")
@task_bp.arguments(LifecycleArgs)
@task_bp.response(200, AnnotationSetSchema)
@task_bp.alt_response(409, description="Already handed in, or the version moved on")
def skip_version(args, task, image_id: int):
    """Nothing to label: hand in an empty version."""
    return repetition_service.submit_version(task, current_user, image_id, args.get("revision"), empty=True)


@repetition_bp.get("/versions")
@requires("dataset:review")
@repetition_bp.response(200, LabelerVersionsSchema)
def versions(dataset, image):
    """Every labeler's version of the image, with their agreement."""
    return repetition_service.versions_of(image)


@repetition_bp.post("/versions/keep")
@requires("dataset:review")
@repetition_bp.arguments(KeepArgs)
@repetition_bp.response(200, AnnotationSetSchema)
@repetition_bp.alt_response(409, description="No version handed in yet, or someone saved the image since")
def keep(args, dataset, image):
    """Make one labeler's version, or the merge of all, the image's annotations (a revision of the
    reviewer's, each annotation keeping its author); then accept or reject as usual."""
    if bool(args.get("merge")) == ("labeler_id" in args):
        raise Invalid("Send labeler_id, or merge: true (one of them)", details={"field": "labeler_id"})
    return repetition_service.keep(image, current_user, args.get("labeler_id"), bool(args.get("merge")), args.get("revision"))
