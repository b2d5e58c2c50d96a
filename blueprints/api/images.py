"""Images of a dataset: keyset list, multipart upload, get, update, delete, file, thumbnail and region bytes."""

from flask import current_app, request
from flask_login import current_user
from marshmallow import Schema, fields

from blueprints.api.base import Blueprint
from blueprints.api.schemas import (
    DeletedSchema, FailedFileSchema, ImageListArgs, ImagePageSchema, ImageSchema, ImagesDeleteArgs, ImageUpdateArgs, UploadArgs,
    UploadResultSchema,
)
from core.errors import Invalid
from core.files import MEDIA_TYPES, media_type, send_object, send_original
from core.permissions import requires
from services import images as service
from services import regions as region_service

bp = Blueprint("api-images", __name__, url_prefix="/api/v1/datasets/<int:dataset_id>/images", description="Images of a dataset")

BYTES = {"schema": {"type": "string", "format": "binary"}}
NOT_MODIFIED = {"description": "Not modified: If-None-Match named the current ETag"}


@bp.get("")
@requires("dataset:view")
@bp.arguments(ImageListArgs, location="query")
@bp.response(200, ImagePageSchema)
def index(_args, dataset):
    """One page of images in id order; labelers see only the images assigned to them."""
    # The schema documents and type-checks the query; the grid's parser then reads the raw strings,
    # since it takes a falsy limit for "not given" and would turn a parsed limit=0 into the default.
    f = service.ImageFilter.from_args(request.args)
    images, next_cursor = service.grid_page(dataset, current_user, f)
    return {"items": images, "total": service.count_images(dataset, current_user, f), "next_cursor": next_cursor}


@bp.post("")
@requires("dataset:import")
@bp.arguments(UploadArgs, location="multipart")
@bp.response(202, UploadResultSchema)
@bp.alt_response(409, description="The dataset is being deleted")
def upload(args, dataset):
    """Store the sent files at once and start a job that imports them (thumbnails, duplicates)."""
    files = args["files"]
    if not any(f.filename for f in files):
        raise Invalid("Send at least one file in the multipart field 'files'", details={"field": "files"})
    upload = service.begin_upload(dataset, current_user, args.get("split") or None)
    outcomes = service.store_files(upload, files, [], args.get("folder", ""))
    stored = [o for o in outcomes if o.stored]
    failed = [o for o in outcomes if not o.stored]
    if not stored:
        # Nothing for a job to do: drop the batch rather than leave an import that never runs.
        service.discard_upload(upload)
        reasons = "; ".join(f"{o.name}: {o.reason}" for o in failed[:5]) + ("; …" if len(failed) > 5 else "")
        raise Invalid(
            f"No file could be stored ({reasons})", code="nothing_stored", details={"failed": FailedFileSchema(many=True).dump(failed)}
        )
    return {"stored": stored, "failed": failed, "job": service.finish_upload(upload, current_user)}


@bp.post("/delete")
@requires("dataset:import")
@bp.arguments(ImagesDeleteArgs)
@bp.response(200, DeletedSchema)
def delete_many(args, dataset):
    """Delete many images, by id and/or by file name."""
    if "image_ids" not in args and "names" not in args:
        raise Invalid("Send image_ids (a list of ids) or names (a list of file names)", details={"field": "image_ids"})
    ids = list(args.get("image_ids", []))
    if "names" in args:
        ids += service.ids_by_names(dataset, args["names"])
    return {"deleted": service.delete_images(dataset, list(dict.fromkeys(ids)))}


@bp.get("/external/<path:external_id>")
@requires("dataset:view")
@bp.response(200, ImageSchema)
def show_external(dataset, external_id: str):
    """The image with this external id (set by an import)."""
    return service.get_by_external_id(dataset, current_user, external_id)


@bp.get("/<int:image_id>")
@requires("image:view")
@bp.response(200, ImageSchema)
def show(dataset, image):
    """One image."""
    return image


@bp.patch("/<int:image_id>")
@requires("dataset:import")
@bp.arguments(ImageUpdateArgs)
@bp.response(200, ImageSchema)
def update(changes, dataset, image):
    """Change an image's split, folder or tags (tags replace the current ones)."""
    return service.update_image(image, **changes)


@bp.delete("/<int:image_id>")
@requires("dataset:import")
@bp.response(204)
def delete(dataset, image):
    """Delete one image (and its file, when no other image shares it)."""
    service.delete_images(dataset, [image.id])


@bp.get("/<int:image_id>/file")
@requires("image:view")
@bp.doc(responses={
    200: {
        "description": "The file as uploaded, with the media type of the format it decoded as",
        "content": {kind: BYTES for kind in [*MEDIA_TYPES.values(), media_type(None)]},
    },
    304: NOT_MODIFIED,
})
def file(dataset, image):
    """The original file's bytes, with an ETag."""
    return send_original(image)


@bp.get("/<int:image_id>/thumbnail")
@requires("image:view")
@bp.doc(responses={200: {"description": "A JPEG", "content": {"image/jpeg": BYTES}}, 304: NOT_MODIFIED})
@bp.alt_response(422, description="The thumbnail was lost and the stored original cannot be decoded to make it again")
def thumbnail(dataset, image):
    """A JPEG thumbnail, with an ETag; a lost one is made again from the original, as the web page does."""
    return send_object(service.ensure_thumbnail(image), "image/jpeg")


class RegionArgs(Schema):
    x = fields.Integer(required=True, metadata={"minimum": 0, "description": "Left edge, in display pixels (after EXIF orientation)"})
    y = fields.Integer(required=True, metadata={"minimum": 0, "description": "Top edge, in display pixels"})
    width = fields.Integer(required=True, metadata={"minimum": 1, "description": "Width in display pixels; x + width <= image width"})
    height = fields.Integer(required=True, metadata={"minimum": 1, "description": "Height in display pixels; y + height <= image height"})
    scale = fields.Float(
        required=True,
        metadata={
            "minimum": 0, "exclusiveMinimum": True, "maximum": 1,
            "description": f"Downscale factor; the output (width*scale x height*scale) is at most {region_service.MAX_SIDE} px a side",
        },
    )


@bp.get("/<int:image_id>/region")
@requires("image:view")
@bp.arguments(RegionArgs, location="query")
@bp.doc(responses={200: {"description": "A JPEG of the region", "content": {"image/jpeg": BYTES}}, 304: NOT_MODIFIED})
def region(args, dataset, image):
    """A crop of the original image, downscaled on the server and cached, with an ETag."""
    key = region_service.ensure_region(
        image, args["x"], args["y"], args["width"], args["height"], args["scale"],
        max_pixels=current_app.config["LOUPE_MAX_IMAGE_PIXELS"],
    )
    return send_object(key, "image/jpeg")
