"""The labeling page: the canvas (static/js/labeling/, ES modules), label palette, history, next/previous.

The canvas saves through the session-authenticated JSON endpoints below, which call the same
service functions as the token API (services/annotations.py), so both paths share validation,
revisions and conflict detection. Writes need the CSRF header that base.html puts on <body>.
"""

from flask import Blueprint, current_app, jsonify, make_response, render_template, request, url_for
from flask_login import current_user

from core.errors import Invalid
from core.extensions import db
from core.files import send_object
from core.permissions import can, requires
from models import SHAPES_BY_TYPE, SINGLE_TAG_TYPES
from services import annotations as annotation_service
from services import navigation
from services import regions as region_service
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
        "annotations": url_for("labeling.annotations", dataset_id=dataset.id, image_id=image.id),
        "submit": url_for("labeling.submit", dataset_id=dataset.id, image_id=image.id),
        "skip": url_for("labeling.skip", dataset_id=dataset.id, image_id=image.id),
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
    return render_template("labeling/page.html", dataset=dataset, image=image, config=config, urls=urls, filtered=f.active)


def _can_annotate(image) -> bool:
    return can(current_user, ANNOTATE, image)


@bp.get("/annotations")
@requires("image:view")
def annotations(dataset, image):
    """The image's annotations, revision and state, as the canvas loads them."""
    return jsonify(annotation_service.get_annotations(image))


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


@bp.post("/submit")
@requires(ANNOTATE)
def submit(dataset, image):
    """Hand the image in (to review, or accepted when no review is asked for)."""
    # With the revision the person saw, a submit cannot hand in someone else's newer save unseen.
    return jsonify(annotation_service.submit(image, current_user, _json_body().get("revision")))


@bp.post("/skip")
@requires(ANNOTATE)
def skip(dataset, image):
    """Submit the image with no annotations."""
    return jsonify(annotation_service.skip(image, current_user, _json_body().get("revision")))


@bp.get("/history")
@requires("image:view")
def history(dataset, image):
    """The history panel: every revision, newest first, with Restore buttons."""
    return _history(dataset, image)


@bp.post("/history/<int:number>/restore")
@requires(ANNOTATE)
def restore(dataset, image, number: int):
    """Make an earlier revision current again (as a new revision); the canvas reloads it."""
    annotation_service.restore(image, current_user, number)
    db.session.refresh(image)
    response = _history(dataset, image)
    # The canvas listens for this and reloads the restored annotations.
    response.headers["HX-Trigger"] = "annotationsRestored"
    return response


def _history(dataset, image):
    """The history panel: always a fragment (the page includes it through hx-get on load)."""
    html = render_template(
        "partials/labeling/_history.html", dataset=dataset, image=image,
        revisions=annotation_service.history(image), can_annotate=_can_annotate(image),
    )
    return make_response(html)


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
