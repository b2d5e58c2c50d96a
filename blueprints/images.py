"""The image grid (filters, keyset paging, infinite scroll, bulk actions), image details and files."""

from flask import Blueprint, request
from flask_login import current_user

from core.errors import Invalid
from core.files import MEDIA_TYPES, send_object
from core.htmx import render
from core.permissions import requires
from models import ImageState, Split
from services import images as service

# Filtered grids count at most this many matches ("1,000+"): an exact count of a broad filter
# over a million rows would cost more than the page itself.
GRID_COUNT_CAP = 1000

bp = Blueprint("images", __name__, url_prefix="/datasets/<int:dataset_id>/images")


def filter_from_args(args) -> service.ImageFilter:
    """Parse grid filters from query arguments (shared with the API)."""
    try:
        after = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or service.PAGE)
    except ValueError:
        raise Invalid("cursor and limit must be whole numbers") from None
    return service.ImageFilter(
        split=args.get("split", ""), state=args.get("state", ""), folder=args.get("folder", ""),
        search=args.get("search", "").strip(), tag=args.get("tag", ""), after=after, limit=limit,
    ).validate()


def _grid_context(dataset, f):
    images, next_cursor = service.grid_page(dataset, current_user, f)
    # Infinite-scroll pages (a cursor) show no count, so they do not pay for one.
    total = None if f.after else service.count_images(dataset, current_user, f, cap=GRID_COUNT_CAP)
    return {"dataset": dataset, "images": images, "next_cursor": next_cursor, "f": f, "total": total, "cap": GRID_COUNT_CAP}


@bp.get("/")
@requires("dataset:view")
def index(dataset):
    f = filter_from_args(request.args)
    context = _grid_context(dataset, f)
    # An infinite-scroll request (cursor given) appends tiles; a filter change replaces the grid.
    partial = "partials/images/_tiles.html" if f.after else "partials/images/_grid.html"
    return render(
        "images/index.html", partial, **context,
        splits=list(Split), states=list(ImageState), folders=service.folders_of(dataset),
    )


@bp.post("/bulk")
@requires("dataset:import")
def bulk(dataset):
    try:
        image_ids = [int(i) for i in request.form.getlist("image_ids")]
    except ValueError:
        raise Invalid("image_ids must be image ids") from None
    if not image_ids:
        raise Invalid("Select at least one image first")
    action = request.form.get("action")
    if action == "delete":
        count = service.delete_images(dataset, image_ids)
        message = f"Deleted {count} image{'s' if count != 1 else ''}"
    elif action == "set_split":
        count = service.set_split(dataset, image_ids, request.form.get("split", ""))
        message = f"Moved {count} image{'s' if count != 1 else ''} to {request.form.get('split')}"
    else:
        raise Invalid(f"Unknown bulk action {action!r}")
    f = filter_from_args(request.args)
    return render(
        "images/index.html", "partials/images/_grid.html", **_grid_context(dataset, f),
        notice=message, trigger="imagesChanged",
    )


@bp.get("/<int:image_id>")
@requires("image:view")
def show(dataset, image):
    return render("images/show.html", "partials/images/_details.html", dataset=dataset, image=image)


@bp.get("/<int:image_id>/thumbnail")
@requires("image:view")
def thumbnail(dataset, image):
    return send_object(image.thumbnail_key, "image/jpeg")


@bp.get("/<int:image_id>/file")
@requires("image:view")
def file(dataset, image):
    return send_object(image.storage_key, MEDIA_TYPES.get(image.format, "application/octet-stream"), download_name=image.file_name if request.args.get("download") else None)
