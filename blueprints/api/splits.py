"""Auto-split of a dataset's images into train, validation and test (a job)."""

from flask_login import current_user
from marshmallow import Schema, fields

from blueprints.api.base import Blueprint
from blueprints.api.schemas import FOLDER, JobSchema
from core.permissions import requires
from models import ImageState, Split
from services import splits as service
from services.images import MAX_BULK, ImageFilter

bp = Blueprint("api-splits", __name__, url_prefix="/api/v1/datasets/<int:dataset_id>", description="Auto-split by percentages")

PERCENT = {"minimum": 0, "maximum": 100}


class SplitArgs(Schema):
    train = fields.Integer(strict=True, required=True, metadata={**PERCENT, "description": "Percent of the images; the three add up to 100"})
    validation = fields.Integer(strict=True, required=True, metadata=PERCENT)
    test = fields.Integer(strict=True, required=True, metadata=PERCENT)
    seed = fields.Integer(strict=True, load_default=0, metadata={"description": "The same seed gives the same split"})
    only_unassigned = fields.Boolean(load_default=True, metadata={"description": "Leave images that already have a split alone (the default)"})
    image_ids = fields.List(fields.Integer(strict=True), metadata={"maxItems": MAX_BULK, "minItems": 1, "description": "Only these images"})
    # The grid's filter: which images (all of the dataset's by default).
    split = fields.String(metadata={"enum": [s.value for s in Split], "description": "Only images now in this split"})
    state = fields.String(metadata={"enum": [s.value for s in ImageState]})
    folder = fields.String(metadata=FOLDER)
    tag = fields.String()
    search = fields.String(metadata={"description": "Part of the file name"})


@bp.post("/split")
@requires("dataset:import")
@bp.arguments(SplitArgs)
@bp.response(202, JobSchema)
def split(args, dataset):
    """Split the images by percentages, deterministic for a seed, stratified by each image's main
    label; only unassigned images unless only_unassigned is false."""
    f = ImageFilter.from_args({name: args[name] for name in ("split", "state", "folder", "tag", "search") if name in args})
    return service.auto_split(
        dataset, current_user, args["train"], args["validation"], args["test"], args["seed"], args["only_unassigned"],
        f, args.get("image_ids"),
    )
