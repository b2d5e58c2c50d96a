"""The Review tab: the review queue (its next image opens on the labeling canvas in review mode)
and the grid review mode (thumbnails with their overlays, verdicts on a keyboard selection).

Verdicts are given through the JSON API (blueprints/api/reviews.py) with the session cookie, by
the canvas and by static/js/review_grid.js alike: one write path.
"""

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user

from core.errors import INT32_MAX, INT64_MAX, Invalid, parse_int
from core.htmx import render
from core.permissions import requires
from services import grid_labeling
from services import images as image_service
from services import reviews as service
from services import tasks as task_service

COUNT_CAP = 1000

bp = Blueprint("reviews", __name__, url_prefix="/datasets/<int:dataset_id>/review")


def _task_id(dataset) -> int | None:
    """The `task_id` of the query string (empty: every task), checked to be one of the dataset's."""
    text = request.args.get("task_id", "").strip()
    if not text:
        return None
    try:
        return service.check_task(dataset, parse_int(text, INT32_MAX))
    except ValueError:
        raise Invalid("task_id must be the id of a labeling task of this dataset", details={"field": "task_id"}) from None


def _canvas_url(dataset, image_id: int, task_id: int | None) -> str:
    task = {"task_id": task_id} if task_id else {}
    return url_for("labeling.show", dataset_id=dataset.id, image_id=image_id, review=1, **task)


@bp.get("/")
@requires("dataset:review")
def index(dataset):
    """The review queue: how many images wait, per task, and "Start reviewing"."""
    task_id = _task_id(dataset)
    return render(
        "reviews/index.html", "partials/reviews/_queue.html", dataset=dataset, task_id=task_id, tasks=task_service.tasks_of(dataset, current_user, newest_first=False),
        waiting=service.count_waiting(dataset, task_id, cap=COUNT_CAP), cap=COUNT_CAP, empty=bool(request.args.get("empty")),
    )


def _cursor(name: str) -> int:
    """An image id of the query string (0 when left out), for keyset paging and moving past an image."""
    try:
        value = parse_int(request.args.get(name) or "0", INT64_MAX)
    except ValueError:
        value = -1
    if value < 0:
        raise Invalid(f"{name} must be an image id", details={"field": name})
    return value


@bp.get("/start")
@requires("dataset:review")
def start(dataset):
    """Open the next image waiting for review on the canvas in review mode (back to the queue when none).

    `?after=<image id>` skips that image (the canvas's "next" without a verdict): its lease goes back.
    """
    task_id = _task_id(dataset)
    image = service.next_to_review(dataset, current_user._get_current_object(), task_id, _cursor("after") or None)
    if image is None:
        task = {"task_id": task_id} if task_id else {}
        return redirect(url_for("reviews.index", dataset_id=dataset.id, empty=1, **task), 303)
    return redirect(_canvas_url(dataset, image.id, task_id), 303)


class _CanvasLinks:
    """What the grid tile's "Label" link carries (partials/images/_tile.html reads `f.args()`):
    here the canvas opens in review mode, so the reviewer can correct a shape and give the verdict."""

    def __init__(self, task_id: int | None):
        self.task_id = task_id

    def args(self) -> dict:
        return {"review": 1, **({"task_id": self.task_id} if self.task_id else {})}


@bp.get("/grid")
@requires("dataset:review")
def grid(dataset):
    """The grid review mode: the images waiting for review, their overlays or classes drawn on them."""
    task_id = _task_id(dataset)
    after = _cursor("cursor")
    images, next_cursor = service.review_page(dataset, task_id, after)
    ids = [image.id for image in images]
    context = {
        "dataset": dataset, "images": images, "next_cursor": next_cursor, "task_id": task_id, "tasks": task_service.tasks_of(dataset, current_user, newest_first=False),
        "annotations": grid_labeling.grid_annotations(ids), "image_tags": image_service.tags_by_image(ids),
        "labels_by_id": {label.id: label for label in grid_labeling.palette(dataset)},
        "f": _CanvasLinks(task_id), "selectable": True, "comment_max": service.MAX_COMMENT,
        "waiting": None if after else service.count_waiting(dataset, task_id, cap=COUNT_CAP), "cap": COUNT_CAP,
    }
    # Infinite scroll (a cursor) appends tiles; the first page is the whole grid.
    partial = "partials/reviews/_tiles.html" if after else "partials/reviews/_grid.html"
    return render("reviews/grid.html", partial, **context)
