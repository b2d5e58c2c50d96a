"""Annotations of one image: get, replace (with the revision it was based on), submit, skip, history, restore."""

import re

from flask import request
from flask_login import current_user
from marshmallow import Schema, fields

from blueprints.api.base import Blueprint
from blueprints.api.schemas import Timestamp
from core.errors import INT32_MAX, Invalid, LoupeError, is_int
from core.permissions import requires
from services import annotations as service

MAX_BODY = 2 * 1024 * 1024
# An ETag is the revision number, quoted ("3"); a bare 3 is accepted too. A revision is an INTEGER
# column: ten digits at most, checked before int() reads them.
REVISION_TAG = re.compile(r'"([0-9]{1,10})"|([0-9]{1,10})')

bp = Blueprint(
    "api-annotations", __name__, url_prefix="/api/v1/datasets/<int:dataset_id>/images/<int:image_id>",
    description="Annotations of an image: every save is a revision; a save based on an old revision gets 409",
)


class BodyTooLarge(LoupeError):
    status, code = 413, "request_too_large"


@bp.before_request
def _bound_body():
    # The app-wide limit is sized for uploads; an annotation set has its own, much smaller one.
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BodyTooLarge(f"The request is larger than the limit of {MAX_BODY // (1024 * 1024)} MB for annotations")
    request.max_content_length = MAX_BODY  # also bounds chunked bodies, which carry no length


# ---- schemas -------------------------------------------------------------------------------


class AnnotationSchema(Schema):
    id = fields.Integer(metadata={"description": "Changes on every save; ignored when sent back"})
    label_id = fields.Integer(required=True)
    shape = fields.String(required=True, metadata={"enum": ["tag", "box", "polygon", "polyline", "points", "circle"]})
    geometry = fields.Dict(metadata={
        "description": "Pixels of the original image. box {x, y, width, height}; polygon, polyline, points "
        "{points: [[x, y], …]} (at least 3, 2, 1); circle {cx, cy, r}; tag {}"
    })
    attributes = fields.Dict(metadata={"description": "Attribute name to value, as the label defines them"})
    text = fields.String(allow_none=True, metadata={"description": "Only for labels with text (OCR)"})
    source = fields.String(metadata={"enum": ["human", "prediction"]})
    score = fields.Float(allow_none=True)
    author_id = fields.Integer(allow_none=True, dump_only=True)


class AnnotationSetSchema(Schema):
    revision = fields.Integer(metadata={"description": "The image's latest revision: name it in the next save"})
    state = fields.String(metadata={"description": "The image's state after the change"})
    annotations = fields.List(fields.Nested(AnnotationSchema))


class RestoredSchema(AnnotationSetSchema):
    restored_from = fields.Integer()
    dropped = fields.List(fields.Dict(), metadata={"description": "Annotations left out because their label was deleted"})


class ReplaceArgs(Schema):
    # Raw: the service validates every annotation and names the index and field at fault.
    revision = fields.Raw(metadata={
        "type": "integer", "minimum": 0, "maximum": INT32_MAX,
        "description": "The revision the annotations are based on (0: none); 409 if someone saved since. Or send it as "
        "If-Match. Leave both out to replace whatever is there: still a revision of its own, so the history keeps what was replaced",
    })
    annotations = fields.Raw(required=True, metadata={"type": "array", "items": {"$ref": "#/components/schemas/Annotation"}})


class LifecycleArgs(Schema):
    # Revisions are an INTEGER column.
    revision = fields.Raw(metadata={
        "type": "integer", "minimum": 0, "maximum": INT32_MAX, "description": "Optional: refuse with 409 if someone saved since",
    })


class PersonSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    email = fields.String()


class RevisionSchema(Schema):
    number = fields.Integer()
    author = fields.Nested(PersonSchema, allow_none=True)
    action = fields.String(metadata={"enum": ["save", "submit", "skip", "restore", "import", "accept", "reject"]})
    created_at = Timestamp()
    saved_at = Timestamp(metadata={"description": "The last save in this revision: the canvas's autosaves within a couple of minutes fold into one"})
    state = fields.String(allow_none=True)
    annotation_count = fields.Integer()
    verdict = fields.String(allow_none=True, metadata={"enum": ["accept", "reject", None], "description": "A reviewer's verdict, on accept and reject"})
    comment = fields.String(allow_none=True, metadata={"description": "The reviewer's comment, with a verdict"})


class HistorySchema(Schema):
    items = fields.List(fields.Nested(RevisionSchema))
    next_before = fields.Integer(allow_none=True, metadata={"description": "Pass as before for older revisions; null at the first"})


class HistoryArgs(Schema):
    before = fields.Integer(metadata={"minimum": 1, "maximum": INT32_MAX, "description": "Only revisions older than this number"})
    limit = fields.Integer(metadata={"minimum": 1, "maximum": service.HISTORY_PAGE})


CONFLICT = "Someone saved since the named revision; details carry current_revision, annotations, author, saved_at"
ETAG = {"ETag": {"description": 'The revision, quoted ("3"): send it back as If-Match to save based on it', "schema": {"type": "string"}}}
IF_MATCH = {
    "in": "header", "name": "If-Match", "required": False, "schema": {"type": "string", "pattern": r'^\s*(\*|"[0-9]{1,10}"|[0-9]{1,10})\s*$'},
    "description": 'The revision the annotations are based on, as the ETag of GET gave it ("3"; 3 works too), instead of `revision`',
}
HANDED_IN_CONFLICT = "The image is already to review or accepted, or someone saved since `revision`"


# ---- routes --------------------------------------------------------------------------------

@bp.get("/annotations")
@requires("image:view")
@bp.response(200, AnnotationSetSchema, headers=ETAG)
def show(dataset, image):
    """The image's annotations and the revision they belong to (also the ETag)."""
    return _tagged(service.get_annotations(image))


@bp.put("/annotations")
@requires("image:annotate")
@bp.arguments(ReplaceArgs)
@bp.doc(parameters=[IF_MATCH])
@bp.response(200, AnnotationSetSchema, headers=ETAG)
@bp.alt_response(409, description=CONFLICT)
def replace(args, dataset, image):
    """Replace all the image's annotations. With `revision` (or If-Match) it must be the latest, or the
    answer is 409; without, the annotations replace whatever is there."""
    return _tagged(service.replace_annotations(image, current_user, args["annotations"], _based_on(args)))


def _tagged(saved: dict):
    return saved, 200, {"ETag": f'"{saved["revision"]}"'}


def _based_on(args: dict):
    """The revision a save names, from the body or the If-Match header (they must agree); None for neither."""
    header = request.headers.get("If-Match", "").strip()
    if not header or header == "*":  # "*": any current version, i.e. no condition
        return args.get("revision")
    match = REVISION_TAG.fullmatch(header)
    tagged = int(match.group(1) or match.group(2)) if match else None
    if not is_int(tagged):
        raise Invalid(f'If-Match must be the revision the change is based on, as the ETag gave it ("3"), not {header[:40]!r}',
                      details={"field": "If-Match"})
    if args.get("revision") is not None and args["revision"] != tagged:
        raise Invalid(f"revision {args['revision']!r} and If-Match {header} name different revisions; send one", details={"field": "revision"})
    return tagged


@bp.post("/submit")
@requires("image:annotate")
@bp.arguments(LifecycleArgs)
@bp.response(200, AnnotationSetSchema)
@bp.alt_response(409, description=HANDED_IN_CONFLICT)
def submit(args, dataset, image):
    """Hand the image in: to_review, or accepted when its task needs no review."""
    return service.submit(image, current_user, args.get("revision"))


@bp.post("/skip")
@requires("image:annotate")
@bp.arguments(LifecycleArgs)
@bp.response(200, AnnotationSetSchema)
@bp.alt_response(409, description=HANDED_IN_CONFLICT)
def skip(args, dataset, image):
    """Submit the image with no annotations."""
    return service.skip(image, current_user, args.get("revision"))


@bp.get("/history")
@requires("image:view")
@bp.arguments(HistoryArgs, location="query")
@bp.response(200, HistorySchema)
def history(args, dataset, image):
    """The image's revisions, newest first: who saved, submitted, skipped or restored, and when."""
    limit = args.get("limit", service.HISTORY_PAGE)
    items = service.history(image, before=args.get("before"), limit=limit)
    more = len(items) == limit and items[-1]["number"] > 1
    return {"items": items, "next_before": items[-1]["number"] if more else None}


@bp.post("/history/<int:number>/restore")
@requires("image:annotate")
@bp.response(200, RestoredSchema)
def restore(dataset, image, number: int):
    """Make an earlier revision's annotations current again (a new revision; nothing is lost)."""
    return service.restore(image, current_user, number)
