"""Statistics of labeling tasks: a task's figures and its members' (services/team_stats.py)."""

from flask_login import current_user
from marshmallow import Schema, fields

from blueprints.api.base import Blueprint
from blueprints.api.schemas import StatsSchema
from core.permissions import requires
from services import team_stats as service

bp = Blueprint("api-stats", __name__, url_prefix="/api/v1/tasks/<int:task_id>", description="Statistics of a labeling task and its members")

NULLABLE_NUMBER = {"allow_none": True}


class _Figures(Schema):
    assigned = fields.Integer(metadata={"description": "Turns at images (with repetition r, an image has r)"})
    open = fields.Integer(metadata={"description": "Turns not handed in (a rejected image's is open again)"})
    submitted = fields.Integer(metadata={"description": "Turns handed in"})
    accepted = fields.Integer(metadata={"description": "Turns whose image is now accepted"})
    rejected = fields.Integer(metadata={"description": "Turns whose image is now rejected"})
    progress = fields.Float(metadata={"description": "Submitted turns, percent of all"})
    images_per_hour = fields.Float(**NULLABLE_NUMBER, metadata={"description": "Handed in, per hour from the first opened to the last handed in"})
    median_seconds = fields.Float(**NULLABLE_NUMBER, metadata={"description": "Median of submitted_at - opened_at"})
    reviews = fields.Integer(metadata={"description": "Verdicts given on these turns"})
    rejection_rate = fields.Float(**NULLABLE_NUMBER, metadata={"description": "Reject verdicts over all verdicts; null without any"})
    agreement = fields.Float(**NULLABLE_NUMBER, metadata={"description": "Agreement between labelers of the same images; null with repetition 1"})


class MemberStatsSchema(_Figures):
    user_id = fields.Integer()
    name = fields.String()


class TaskStatsSchema(_Figures):
    id = fields.Integer()
    dataset_id = fields.Integer()
    name = fields.String()
    repetition = fields.Integer()
    unassigned = fields.Integer(metadata={"description": "Open turns nobody holds (handed back)"})
    members = fields.List(fields.Nested(MemberStatsSchema), metadata={"description": "A labeler sees only their own row"})


class DatasetStatsSchema(StatsSchema):
    tasks = fields.List(fields.Nested(TaskStatsSchema), metadata={"description": "The dataset's labeling tasks, each with its members"})
    members = fields.List(fields.Nested(MemberStatsSchema), metadata={"description": "Each labeler over all the dataset's tasks"})


@bp.get("/stats")
@requires("task:view")
@bp.response(200, TaskStatsSchema)
def task_stats(task):
    """A task's progress, speed and quality, in all and per member; a labeler sees their own figures only."""
    return service.task_stats(task, current_user)
