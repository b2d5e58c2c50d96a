"""Free-form image tags of a dataset: list with image counts, rename (merging onto an existing tag), delete."""

from flask_login import current_user
from marshmallow import Schema, fields

from blueprints.api.base import Blueprint
from blueprints.api.schemas import name_rules
from core.permissions import requires
from services import images as service

bp = Blueprint("api-tags", __name__, url_prefix="/api/v1/datasets/<int:dataset_id>/tags", description="Image tags of a dataset")


class TagSchema(Schema):
    name = fields.String()
    image_count = fields.Integer()


class RenamedTagSchema(TagSchema):
    merged = fields.Boolean(metadata={"description": "true when the new name was another tag's, which now has both"})


class TagListSchema(Schema):
    items = fields.List(fields.Nested(TagSchema))


class TagRenameArgs(Schema):
    name = fields.String(required=True, metadata=name_rules(
        service.MAX_TAG_NAME, f"The new name (1 to {service.MAX_TAG_NAME} characters); an existing tag's name merges the two"
    ))


class TagDeletedSchema(Schema):
    images = fields.Integer(metadata={"description": "How many images lost the tag"})


@bp.get("")
@requires("dataset:view")
@bp.response(200, TagListSchema)
def index(dataset):
    """Every tag of the dataset with the number of images that carry it (set tags with PATCH on an image).

    A labeler sees the tags of the images assigned to them, counted over those images.
    """
    return {"items": service.list_tags(dataset, current_user)}


@bp.post("/<path:tag>/rename")
@requires("dataset:import")
@bp.arguments(TagRenameArgs)
@bp.response(200, RenamedTagSchema)
def rename(args, dataset, tag: str):
    """Rename a tag on every image; renaming onto an existing tag merges them."""
    return service.rename_tag(dataset, tag, args["name"])


@bp.delete("/<path:tag>")
@requires("dataset:import")
@bp.response(200, TagDeletedSchema)
def delete(dataset, tag: str):
    """Remove a tag from every image of the dataset."""
    return {"images": service.delete_tag(dataset, tag)}
