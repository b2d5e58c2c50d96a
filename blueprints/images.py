"""The image grid (filters, keyset paging, infinite scroll, bulk actions), image details and files."""

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from core.errors import Forbidden, Invalid
from core.extensions import db
from core.files import MEDIA_TYPES, send_object
from core.htmx import fragment, is_htmx, render
from core.permissions import requires
from models import Image, ImageState, Split
from services import grid_labeling
from services import images as service

# Filtered grids count at most this many matches ("1,000+"): an exact count of a broad filter
# over a million rows would cost more than the page itself.
GRID_COUNT_CAP = 1000

bp = Blueprint("images", __name__, url_prefix="/datasets/<int:dataset_id>/images")


def _tile_context(dataset, images) -> dict:
    """What tiles draw besides the image: its annotations (one query for the whole page) and the labels."""
    labels = grid_labeling.palette(dataset)
    return {
        "annotations": grid_labeling.grid_annotations([i.id for i in images]),
        "image_tags": service.tags_by_image([i.id for i in images]),
        "labels_by_id": {label.id: label for label in labels},
        # The label palette (and tile selection) for people who classify in the grid.
        "palette": labels if grid_labeling.may_label_in_grid(dataset, current_user) else [],
    }


def _grid_context(dataset, f):
    images, next_cursor = service.grid_page(dataset, current_user, f)
    # Infinite-scroll pages (a cursor) show no count, so they do not pay for one.
    total = None if f.after else service.count_images(dataset, current_user, f, cap=GRID_COUNT_CAP)
    return {
        "dataset": dataset, "images": images, "next_cursor": next_cursor, "f": f, "total": total, "cap": GRID_COUNT_CAP,
        **_tile_context(dataset, images),
    }


@bp.get("/")
@requires("dataset:view")
def index(dataset):
    f = service.ImageFilter.from_args(request.args)
    context = _grid_context(dataset, f)
    # An infinite-scroll request (cursor given) appends tiles; a filter change replaces the grid.
    partial = "partials/images/_tiles.html" if f.after else "partials/images/_grid.html"
    return render(
        "images/index.html", partial, **context,
        splits=list(Split), states=list(ImageState), folders=service.folders_of(dataset), tags=service.list_tags(dataset),
    )


def _images(count: int) -> str:
    return f"{count} image{'' if count == 1 else 's'}"


@bp.post("/bulk")
@requires("dataset:import")
def bulk(dataset):
    image_ids = _form_ids()
    if not image_ids:
        raise Invalid("Select at least one image first")
    action = request.form.get("action")
    if action == "delete":
        count = service.delete_images(dataset, image_ids)
        message = f"Deleted {_images(count)}"
    elif action == "set_split":
        count = service.set_split(dataset, image_ids, request.form.get("split", ""))
        message = f"Moved {_images(count)} to {request.form.get('split')}"
    elif action == "add_tag":
        count = service.add_tag_to_images(dataset, image_ids, request.form.get("tag", ""))
        message = f"Tagged {_images(count)} {request.form.get('tag', '').strip()!r}"
    elif action == "remove_tag":
        count = service.remove_tag_from_images(dataset, image_ids, request.form.get("tag", ""))
        message = f"Removed the tag {request.form.get('tag', '').strip()!r} from {_images(count)}"
    elif action == "move_folder":
        count = service.move_to_folder(dataset, image_ids, request.form.get("to_folder", ""))
        where = service.clean_folder_path(request.form.get("to_folder", "")) or "the top level"
        message = f"Moved {_images(count)} to {where}"
    else:
        raise Invalid(f"Unknown bulk action {action!r}")
    f = service.ImageFilter.from_args(request.args)
    return render(
        "images/index.html", "partials/images/_grid.html", **_grid_context(dataset, f),
        notice=message, trigger="imagesChanged",
        # The bar's tag and folder suggestions are part of the swapped grid, so they come along.
        tags=service.list_tags(dataset), folders=service.folders_of(dataset),
        # These change tag counts (or add a tag), which the tag filter and manager also show.
        refresh_tags=action in ("add_tag", "remove_tag", "delete"),
    )


def _tags_changed(dataset, f: service.ImageFilter, notice: str):
    """The tag manager's list and the grid's tag filter (out of band) after a rename or delete.

    The filter form reloads the grid on `tagsChanged`; firing it after settling makes that
    reload read the swapped-in filter, so a grid filtered by the old name follows the tag.
    """
    if not is_htmx():
        return redirect(url_for("images.index", dataset_id=dataset.id, **f.args()), 303)
    response = fragment("partials/images/_tags_changed.html", dataset=dataset, tags=service.list_tags(dataset), f=f, tag_notice=notice)
    response.headers["HX-Trigger-After-Settle"] = "tagsChanged"
    return response


@bp.post("/tags/rename")
@requires("dataset:import")
def rename_tag(dataset):
    name, new_name = request.form.get("name", ""), request.form.get("new_name", "")
    try:
        # The manager sends the grid's filters along; parse them before changing anything, so a
        # bad filter cannot fail the request after the rename has been committed.
        f = service.ImageFilter.from_args(request.form)
        tag = service.rename_tag(dataset, name, new_name)
    except Invalid as exc:
        if not is_htmx():
            raise
        # htmx swaps a 422 into the list (base.html's responseHandling), so answer the list itself,
        # with the reason and the name as typed, rather than an error that would replace it.
        return fragment(
            "partials/images/_tag_manager.html", status=422,
            dataset=dataset, tags=service.list_tags(dataset), tag_error=exc.message, failed_tag=name, typed_name=new_name,
        )
    if f.tag == name:
        f.tag = tag["name"]
    if tag["merged"]:
        notice = f"Merged the tag {name!r} into {tag['name']!r}, now on {_images(tag['image_count'])}"
    else:
        notice = f"Renamed the tag {name!r} to {tag['name']!r} ({_images(tag['image_count'])})"
    return _tags_changed(dataset, f, notice)


@bp.post("/tags/delete")
@requires("dataset:import")
def delete_tag(dataset):
    f = service.ImageFilter.from_args(request.form)
    name = request.form.get("name", "")
    count = service.delete_tag(dataset, name)
    if f.tag == name:
        f.tag = ""
    return _tags_changed(dataset, f, f"Deleted the tag {name!r} from {_images(count)}")


def _form_ids() -> list[int]:
    try:
        return [int(i) for i in request.form.getlist("image_ids")]
    except ValueError:
        raise Invalid("image_ids must be image ids", details={"field": "image_ids"}) from None


def _classified(dataset, outcome: dict, message: str):
    """The changed tiles (for the grid to swap in place) and a status carrying the undo token."""
    if outcome["changed"] == [] and outcome["skipped"] and all(
        s["reason"] == grid_labeling.NOT_ALLOWED for s in outcome["skipped"]
    ):
        raise Forbidden("You may not annotate any of the selected images")
    images = db.session.scalars(select(Image).where(Image.id.in_(outcome["changed"])).order_by(Image.id)).all()
    return fragment(
        "partials/images/_classified.html", trigger="imagesChanged" if outcome["changed"] else None,
        dataset=dataset, images=images, outcome=outcome, message=message,
        f=service.ImageFilter.from_args(request.args), **_tile_context(dataset, images),
    )


@bp.post("/classify")
@requires("dataset:view")  # and image:annotate on each image, checked by the service
def classify(dataset):
    try:
        label_id = int(request.form.get("label_id", ""))
    except ValueError:
        raise Invalid("label_id must be the id of a label of this dataset", details={"field": "label_id"}) from None
    outcome = grid_labeling.classify_images(dataset, current_user, _form_ids(), label_id, request.form.get("mode") or None)
    n = len(outcome["changed"])
    verb = {"set": "Classified", "add": "Added the class to", "remove": "Removed the class from"}[outcome["action"]]
    message = f"{verb} {_images(n)}"
    return _classified(dataset, outcome, message)


@bp.post("/classify/undo")
@requires("dataset:view")  # and image:annotate on each image, checked by the service
def classify_undo(dataset):
    outcome = grid_labeling.undo_classification(dataset, current_user, request.form.get("undo", ""))
    n = len(outcome["changed"])
    return _classified(dataset, {**outcome, "undo": None}, f"Undid the classification of {_images(n)}")


@bp.get("/<int:image_id>")
@requires("image:view")
def show(dataset, image):
    return render("images/show.html", "partials/images/_details.html", dataset=dataset, image=image)


@bp.get("/<int:image_id>/thumbnail")
@requires("image:view")
def thumbnail(dataset, image):
    return send_object(service.ensure_thumbnail(image), "image/jpeg")


@bp.get("/<int:image_id>/file")
@requires("image:view")
def file(dataset, image):
    return send_object(image.storage_key, MEDIA_TYPES.get(image.format, "application/octet-stream"), download_name=image.file_name if request.args.get("download") else None)
