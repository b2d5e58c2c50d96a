"""Reviews: a verdict on one image, the same verdict on many (the grid review), the review queue's
next image, and an image's last rejection (for its labeler)."""

from flask import Response, request, url_for
from flask_login import current_user
from marshmallow import Schema, fields, validate

from blueprints.api.annotations import BodyTooLarge, PersonSchema
from blueprints.api.base import Blueprint
from blueprints.api.schemas import Timestamp
from core.errors import INT32_MAX, INT64_MAX
from core.permissions import requires
from services import reviews as service

# Far above MAX_BULK ids and a comment of MAX_COMMENT characters, even \u-escaped; as the
# annotations' routes bound theirs, so a body no route can hold gets the same answer everywhere.
MAX_BODY = 2 * 1024 * 1024

bp = Blueprint(
    "api-reviews", __name__, url_prefix="/api/v1/datasets/<int:dataset_id>",
    description="Reviews: accept an image waiting for review, or reject it with a comment; the next image to review",
)


@bp.before_request
def _bound_body():
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BodyTooLarge(f"The request is larger than the limit of {MAX_BODY // (1024 * 1024)} MB for reviews")
    request.max_content_length = MAX_BODY  # also bounds chunked bodies, which carry no length


# ---- schemas -------------------------------------------------------------------------------

# Raw: the service checks the values, so the pages and the API answer alike and name the field.
VERDICT = {"type": "string", "enum": ["accept", "reject"]}
COMMENT = {
    "type": "string", "maxLength": service.MAX_COMMENT,
    "description": "What the labeler should fix: required (not blank) to reject, optional to accept",
}


class ReviewArgs(Schema):
    verdict = fields.Raw(required=True, metadata=VERDICT)
    comment = fields.Raw(allow_none=True, metadata=COMMENT)
    revision = fields.Raw(metadata={
        "type": "integer", "minimum": 0, "maximum": INT32_MAX,
        "description": "Optional: the revision the reviewer looked at; 409 if anyone changed the image since",
    })


class ReviewSchema(Schema):
    image_id = fields.Integer()
    revision = fields.Integer(metadata={"description": "The verdict's own revision (it shows in the history)"})
    state = fields.String(metadata={"enum": ["accepted", "rejected"]})
    verdict = fields.String(metadata=VERDICT)
    comment = fields.String()


class BulkVerdictArgs(Schema):
    image_ids = fields.Raw(required=True, metadata={
        "type": "array", "items": {"type": "integer", "minimum": 1, "maximum": INT64_MAX}, "minItems": 1, "maxItems": service.MAX_BULK,
        "description": f"Images of this dataset waiting for review, at most {service.MAX_BULK}",
    })
    verdict = fields.Raw(required=True, metadata=VERDICT)
    comment = fields.Raw(allow_none=True, metadata=COMMENT)


class ReviewOutcomeSchema(Schema):
    image_id = fields.Integer()
    outcome = fields.String(metadata={"enum": ["accepted", "rejected", "refused"]})
    state = fields.String(allow_none=True)
    revision = fields.Integer(allow_none=True)
    code = fields.String(allow_none=True, metadata={"description": "Why it was refused: wrong_state, conflict, not_found"})
    reason = fields.String(allow_none=True)


class BulkVerdictSchema(Schema):
    items = fields.List(fields.Nested(ReviewOutcomeSchema), metadata={"description": "One per image, in the order sent"})
    accepted = fields.Integer()
    rejected = fields.Integer()
    refused = fields.Integer()


class ReviewNextArgs(Schema):
    task_id = fields.Integer(validate=validate.Range(1, INT32_MAX), metadata={"description": "Only images of this labeling task"})
    after = fields.Integer(validate=validate.Range(min=0), metadata={
        "description": "Move past this image (skip it): its lease goes back to the other reviewers",
    })


class ReviewNextSchema(Schema):
    image_id = fields.Integer()
    revision = fields.Integer(metadata={"description": "Send it with the verdict: 409 if anyone changes the image meanwhile"})
    state = fields.String()
    annotations_url = fields.String()
    review_url = fields.String(metadata={"description": "POST the verdict here"})
    canvas_url = fields.String(metadata={"description": "The labeling canvas in review mode"})
    lease_seconds = fields.Integer(metadata={"description": "Other reviewers are handed other images this long"})


class RejectionDetailsSchema(Schema):
    comment = fields.String()
    reviewer = fields.Nested(PersonSchema, allow_none=True)
    created_at = Timestamp()
    revision = fields.Integer(allow_none=True)


class RejectionSchema(Schema):
    rejection = fields.Nested(RejectionDetailsSchema, allow_none=True, metadata={"description": "null: never rejected"})


REFUSED = "The image is not waiting for review (code wrong_state: another reviewer was first), or, with `revision`, someone changed it since (code conflict)"


# ---- routes --------------------------------------------------------------------------------


@bp.post("/images/<int:image_id>/review")
@requires("dataset:review")
@bp.arguments(ReviewArgs)
@bp.response(200, ReviewSchema)
@bp.alt_response(409, description=REFUSED)
def decide(args, dataset, image):
    """Accept the image, or reject it with a comment (its labelers get it back first in their queues)."""
    user = current_user._get_current_object()
    return service.give_verdict(image, user, args["verdict"], args.get("comment", ""), args.get("revision"))


@bp.post("/reviews")
@requires("dataset:review")
@bp.arguments(BulkVerdictArgs)
@bp.response(200, BulkVerdictSchema)
def decide_many(args, dataset):
    """The same verdict on many images, each on its own: every image's outcome is reported."""
    user = current_user._get_current_object()
    return service.give_verdicts(dataset, user, args["image_ids"], args["verdict"], args.get("comment", ""))


@bp.get("/reviews/next")
@requires("dataset:review")
@bp.arguments(ReviewNextArgs, location="query")
@bp.response(200, ReviewNextSchema)
@bp.alt_response(204, description="Nothing waits for review (that another reviewer is not looking at)")
@bp.alt_response(503, description="Redis, which holds the reviewers' leases, is not reachable")
def next_image(args, dataset):
    """The next image waiting for review, held for the caller a few minutes so other reviewers get others."""
    user = current_user._get_current_object()
    image = service.next_to_review(dataset, user, args.get("task_id"), args.get("after"))
    if image is None:
        return Response(status=204)
    ids = {"dataset_id": dataset.id, "image_id": image.id}
    task = {"task_id": args["task_id"]} if args.get("task_id") else {}
    return {
        "image_id": image.id, "revision": image.revision, "state": image.state.value,
        "annotations_url": url_for("api-annotations.show", **ids), "review_url": url_for("api-reviews.decide", **ids),
        "canvas_url": url_for("labeling.show", **ids, review=1, **task), "lease_seconds": service.LEASE_SECONDS,
    }


@bp.get("/images/<int:image_id>/rejection")
@requires("image:view")
@bp.response(200, RejectionSchema)
def rejection(dataset, image):
    """The image's last rejection: the reviewer's comment, who and when (null if never rejected)."""
    return {"rejection": service.latest_rejection(image)}
