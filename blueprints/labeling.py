"""The labeling page: the canvas (static/js/labeling/, ES modules), label palette, history, next/previous.

The canvas reads, submits, skips, lists the history and restores through the JSON API
(blueprints/api/annotations.py) with the session cookie. Its autosave alone stays here: it folds a
person's saves within a couple of minutes into one revision, which the API's replace does not.
Writes need the CSRF header that base.html puts on <body>.
"""

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_login import current_user

from core.errors import INT32_MAX, Invalid, parse_int
from core.extensions import db
from core.files import send_object
from core.permissions import assigned_repetition, can, requires
from models import SHAPES_BY_TYPE, SINGLE_TAG_TYPES, ImageState, LabelingTask
from services import annotations as annotation_service
from services import navigation
from services import regions as region_service
from services import repetition as repetition_service
from services import reviews as review_service
from services import tasks as task_service
from services.images import ImageFilter

# Writes need "image:annotate" (SPEC section 4: labelers only on assigned images, until accepted).
ANNOTATE = "image:annotate"
# Above this many pixels the canvas starts from the preview instead of the original file.
LARGE_PIXELS = 4_000_000

bp = Blueprint("labeling", __name__, url_prefix="/datasets/<int:dataset_id>/images/<int:image_id>")


def _labels(dataset) -> list[dict]:
    return [
        {
            "id": label.id, "name": label.name, "color": label.color, "shortcut": label.shortcut or "",
            "default_shape": label.default_shape, "with_text": label.with_text,
            "attributes": label.attributes or [], "unclassified": label.unclassified,
        }
        for label in annotation_service.dataset_labels(dataset.id)
    ]


@bp.get("/label")
@requires("image:view")
def show(dataset, image):
    """The labeling page; next/previous walk the grid filter given in the query string."""
    user = current_user._get_current_object()  # once: the page asks it a dozen times, and the proxy costs per read
    f = ImageFilter.from_args({k: v for k, v in request.args.items() if k not in ("cursor", "limit")})
    place = navigation.locate(dataset, user, f, image.id)
    nav = f.args()

    def link(image_id):
        return url_for("labeling.show", dataset_id=dataset.id, image_id=image_id, **nav) if image_id else None

    urls = {
        "annotations": url_for("api-annotations.show", dataset_id=dataset.id, image_id=image.id),
        "save": url_for("labeling.save", dataset_id=dataset.id, image_id=image.id),
        "submit": url_for("api-annotations.submit", dataset_id=dataset.id, image_id=image.id),
        "skip": url_for("api-annotations.skip", dataset_id=dataset.id, image_id=image.id),
        # A revision's restore is this plus /<number>/restore.
        "history": url_for("api-annotations.history", dataset_id=dataset.id, image_id=image.id),
        "file": url_for("images.file", dataset_id=dataset.id, image_id=image.id),
        "preview": url_for("labeling.preview", dataset_id=dataset.id, image_id=image.id),
        "region": url_for("labeling.region", dataset_id=dataset.id, image_id=image.id),
        "next": link(place.next_id),
        "previous": link(place.previous_id),
        "next_unlabeled": link(place.next_unlabeled_id),
        "grid": url_for("images.index", dataset_id=dataset.id, **nav),
    }
    config = {
        "dataset_id": dataset.id, "image_id": image.id, "user_id": user.id, "width": image.width, "height": image.height,
        "type": dataset.type.value, "shapes": list(SHAPES_BY_TYPE[dataset.type]),
        "single_tag": dataset.type in SINGLE_TAG_TYPES, "labels": _labels(dataset), "urls": urls,
        "can_annotate": can(user, ANNOTATE, image),
        "shapes_by_type": {t.value: list(s) for t, s in SHAPES_BY_TYPE.items()},
        # Larger images load a downscaled preview first and sharp regions as the view zooms in.
        "large": image.width * image.height > LARGE_PIXELS,
        "preview_side": region_service.PREVIEW_SIDE, "region_max": region_service.MAX_SIDE,
        "position": place.position.place, "total": place.position.total, "position_exact": place.position.exact,
    }
    _in_workflow(dataset, image, user, config, urls)
    rejection = review_service.latest_rejection(image) if image.state == ImageState.rejected else None
    versions = repetition_service.versions_of(image) if config.get("review") else None
    return render_template(
        "labeling/page.html", dataset=dataset, image=image, config=config, urls=urls, filtered=f.active, rejection=rejection,
        versions=versions if versions and versions["versions"] else None, labels_by_id={label["id"]: label for label in config["labels"]},
    )


def _task_arg(dataset) -> LabelingTask | None:
    """The task of `?task_id=` when it is one of the dataset's (anything else: no task)."""
    try:
        task_id = parse_int(request.args.get("task_id", ""), INT32_MAX)
    except ValueError:
        return None
    task = db.session.get(LabelingTask, task_id)
    return task if task is not None and task.dataset_id == dataset.id else None


def _in_workflow(dataset, image, user, config: dict, urls: dict) -> None:
    """The canvas in a labeler's task queue (?task_id=) or in review mode (?review=1): what it shows,
    and where it goes after a submit or a verdict (the next open image, the next one to review)."""
    task = _task_arg(dataset)
    if request.args.get("review") and can(user, "dataset:review", dataset):
        task_arg = {"task_id": task.id} if task else {}
        config["review"] = {
            "waiting": image.state == ImageState.to_review,
            "verdict": url_for("api-reviews.decide", dataset_id=dataset.id, image_id=image.id),
            "next": url_for("reviews.start", dataset_id=dataset.id, **task_arg),
            "queue": url_for("reviews.index", dataset_id=dataset.id, **task_arg),
        }
        urls["next"] = config["review"]["next"]
        return
    # The repetition of the image's task for this user came with the URL's one query (load_user).
    turn = repetition_service.versioned_turn(image, user) if (assigned_repetition(user, image) or 0) > 1 else None
    if turn is not None:
        # Their own version, never the image's shared annotations (services/repetition.py).
        task = db.session.get(LabelingTask, turn.task_id)
        ids = {"task_id": task.id, "image_id": image.id}
        urls.update(
            annotations=url_for("api-task.show_version", **ids), save=url_for("api-task.save_version", **ids),
            submit=url_for("api-task.submit_version", **ids), skip=url_for("api-task.skip_version", **ids), history=None,
        )
        config["version"] = True
    if task is not None and can(user, "task:work", task):
        config["task"] = {
            "id": task.id, "name": task.name, **task_service.place_in_queue(task, user, image),
            "later": url_for("api-task.later", task_id=task.id), "start": url_for("work.start", task_id=task.id),
        }
        urls["next"] = config["task"]["start"]


@bp.put("/annotations")
@requires(ANNOTATE)
def save(dataset, image):
    """Replace the image's annotations, based on the revision the edit started from (409 if it moved on).

    These are the canvas's autosaves: one person's within a couple of minutes fold into one revision.
    """
    body = _json_body()
    # The canvas always knows its base; a save without one would overwrite unseen work.
    if body.get("revision") is None or "annotations" not in body:
        raise Invalid("Send {revision, annotations}: the revision your change is based on, and every annotation")
    user = current_user._get_current_object()
    return jsonify(annotation_service.replace_annotations(image, user, body["annotations"], body["revision"], fold=True))


def _json_body() -> dict:
    """The request's JSON object; an empty body reads as {}."""
    if not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object")
    return body


@bp.get("/preview")
@requires("image:view")
def preview(dataset, image):
    """The whole image downscaled (longest side PREVIEW_SIDE), a cached JPEG with an ETag."""
    key = region_service.ensure_preview(image, max_pixels=current_app.config["LOUPE_MAX_IMAGE_PIXELS"])
    return send_object(key, "image/jpeg")


@bp.get("/region")
@requires("image:view")
def region(dataset, image):
    """A crop of the original in display pixels (x, y, width, height) downscaled by scale (0-1], cached."""
    args = request.args
    key = region_service.ensure_region(
        image, args.get("x"), args.get("y"), args.get("width"), args.get("height"), args.get("scale"),
        max_pixels=current_app.config["LOUPE_MAX_IMAGE_PIXELS"],
    )
    return send_object(key, "image/jpeg")
