"""The image grid (filters, keyset paging, infinite scroll, bulk actions), image details and files."""

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from core.errors import INT32_MAX, Forbidden, Invalid, parse_int
from core.extensions import db
from core.files import send_object, send_original
from core.htmx import fragment, is_htmx, render
from core.permissions import requires, sees_all_images
from models import Image, ImageState, Split
from services import bulk as bulk_service
from services import datasets as dataset_service
from services import grid_labeling
from services import images as service
from services import tasks as task_service

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
    # Infinite-scroll pages (a cursor, asked by htmx) show no count, so they do not pay for one; a
    # full page opened at a cursor (a reload, a shared link) still shows the grid bar and its count.
    scrolling = f.after and is_htmx()
    total = None if scrolling else service.count_images(dataset, current_user, f, cap=GRID_COUNT_CAP)
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
        splits=list(Split), states=list(ImageState), folders=service.folders_of(dataset, current_user), tags=service.list_tags(dataset, current_user),
        tasks=task_service.tasks_of(dataset, current_user), assignees=dataset_service.list_members(dataset) if sees_all_images(current_user, dataset) else [],
    )


def _images(count: int) -> str:
    return f"{count} image{'' if count == 1 else 's'}"


@bp.post("/bulk")
@requires("dataset:import")
def bulk(dataset):
    """A bulk action on the selected images, or (all_matching) on every image the grid's filter matches."""
    f = service.ImageFilter.from_args(request.args)
    action = request.form.get("action", "")
    if action not in service.BULK_CHANGES:
        raise Invalid(f"Unknown bulk action {action!r}", details={"field": "action"})
    params = {name: request.form.get(name, "") for name in service.BULK_CHANGES[action][0]}
    if request.form.get("all_matching"):
        outcome = bulk_service.apply_to_filter(dataset, current_user, action, f, params)
    else:
        image_ids = _form_ids()
        if not image_ids:
            raise Invalid("Select at least one image first")
        outcome = bulk_service.BulkOutcome(service.apply_bulk_change(dataset, action, image_ids, params))
    return render(
        "images/index.html", "partials/images/_bulk_result.html", **_grid_context(dataset, f),
        notice=_bulk_notice(action, params, outcome), job=outcome.job, trigger=None if outcome.job else "imagesChanged",
        # The bar's tag and folder suggestions come along, as the tag manager and filter do when
        # tag counts change (or a tag is added).
        tags=service.list_tags(dataset, current_user), folders=service.folders_of(dataset, current_user),
        refresh_tags=action in ("add_tag", "remove_tag", "delete"),
    )


def _bulk_notice(action: str, params: dict, outcome) -> str:
    if outcome.job:
        return f"A job is going through the {outcome.count:,} matching images; its progress is below"
    count = outcome.count
    if action == "delete":
        return f"Deleted {_images(count)}"
    if action == "set_split":
        return f"Moved {_images(count)} to {params['split']}"
    if action == "add_tag":
        return f"Tagged {_images(count)} {params['tag'].strip()!r}"
    if action == "remove_tag":
        return f"Removed the tag {params['tag'].strip()!r} from {_images(count)}"
    return f"Moved {_images(count)} to {service.clean_folder_path(params['to_folder']) or 'the top level'}"


@bp.post("/tiles")
@requires("dataset:view")
def tiles(dataset):
    """The current tiles of images the grid shows (after a bulk action or its job), to redraw in place."""
    f = service.ImageFilter.from_args(request.args)
    images = service.shown_images(dataset, current_user, _form_ids())
    return fragment(
        "partials/images/_redrawn.html", dataset=dataset, images=images, next_cursor=None, f=f, cap=GRID_COUNT_CAP,
        total=service.count_images(dataset, current_user, f, cap=GRID_COUNT_CAP), **_tile_context(dataset, images),
    )


def _tags_changed(dataset, f: service.ImageFilter, notice: str):
    """The tag manager's list and the grid's tag filter (out of band) after a rename or delete.

    The filter form reloads the grid on `tagsChanged`; firing it after settling makes that
    reload read the swapped-in filter, so a grid filtered by the old name follows the tag.
    """
    if not is_htmx():
        return redirect(url_for("images.index", dataset_id=dataset.id, **f.args()), 303)
    response = fragment("partials/images/_tags_changed.html", dataset=dataset, tags=service.list_tags(dataset, current_user), f=f, tag_notice=notice)
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
            dataset=dataset, tags=service.list_tags(dataset, current_user), tag_error=exc.message, failed_tag=name, typed_name=new_name,
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
        return [parse_int(i) for i in request.form.getlist("image_ids")]
    except ValueError:
        raise Invalid("image_ids must be image ids", details={"field": "image_ids"}) from None


def _classified(dataset, outcome: dict, message: str, job=None):
    """The changed tiles (for the grid to swap in place) and a status carrying the undo token."""
    if outcome["changed"] == [] and outcome["skipped"] and all(
        s["reason"] == grid_labeling.NOT_ALLOWED for s in outcome["skipped"]
    ):
        raise Forbidden("You may not annotate any of the selected images")
    images = db.session.scalars(select(Image).where(Image.id.in_(outcome["changed"])).order_by(Image.id)).all()
    return fragment(
        "partials/images/_classified.html", trigger="imagesChanged" if outcome["changed"] else None,
        dataset=dataset, images=images, outcome=outcome, message=message, job=job,
        f=service.ImageFilter.from_args(request.args), **_tile_context(dataset, images),
    )


@bp.post("/classify")
@requires("dataset:view")  # and image:annotate on each image, checked by the service
def classify(dataset):
    try:
        label_id = parse_int(request.form.get("label_id", ""), INT32_MAX)
    except ValueError:
        raise Invalid("label_id must be the id of a label of this dataset", details={"field": "label_id"}) from None
    mode = request.form.get("mode") or None
    if request.form.get("all_matching"):
        f = service.ImageFilter.from_args(request.args)
        matching = bulk_service.apply_to_filter(dataset, current_user, "classify", f, {"label_id": label_id, "mode": mode})
        if matching.classified is None:
            # Too many for one request (no tiles and no undo: a job and its progress), or none match.
            message = _bulk_notice("classify", {}, matching) if matching.job else "No image matches the filter"
            return _classified(dataset, {"changed": [], "skipped": [], "undo": None}, message, job=matching.job)
        outcome = matching.classified
    else:
        outcome = grid_labeling.classify_images(dataset, current_user, _form_ids(), label_id, mode)
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
    return send_original(image, attachment=bool(request.args.get("download")))
