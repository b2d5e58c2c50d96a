"""Marshmallow schemas of the JSON API: what requests may carry and what responses contain.

Value checks (types of dataset, splits, limits) stay in the services, so the pages and the API
answer the same; `metadata` only tells the OpenAPI document which values exist.
"""

from datetime import timezone

from flask import url_for
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from core.errors import INT32_MAX, INT64_MAX, INT64_MIN
from models import SHAPES, DatasetType, ImageState, JobStatus, Role, Split
from services.crops import PAGE_DEFAULT as CROP_PAGE_DEFAULT
from services.crops import PAGE_MAX as CROP_PAGE_MAX
from services.datasets import MAX_DESCRIPTION, SORTS
from services.datasets import MAX_NAME as DATASET_NAME
from services.images import MAX_BULK, MAX_TAG_NAME, MAX_TAGS_PER_IMAGE, PAGE
from services.jobs import dataset_status
from services.labels import MAX_ATTRIBUTE_NAME
from services.labels import MAX_NAME as LABEL_NAME


def _values(enum) -> list[str]:
    return [member.value for member in enum]


COLOR = r"^\s*#[0-9a-fA-F]{6}\s*$"
# Stricter than services.images.clean_folder_path (no '..' anywhere, rather than as a segment).
FOLDER = {"maxLength": 1024, "pattern": r"^(?![\s\S]*\.\.)"}


def name_rules(max_length: int, description: str = "") -> dict:
    """The document's words for a name the services strip and refuse when blank or too long."""
    return {"minLength": 1, "maxLength": max_length, "pattern": r"\S", "description": description or f"1 to {max_length} characters, not blank"}


def whole_number_bounds(converter, field, ret: dict) -> dict:
    """An apispec attribute function: every whole number is 64-bit, as core.http reads them and the database holds them."""
    if ret.get("type") != "integer":
        return {}
    return {"minimum": ret.get("minimum", INT64_MIN), "maximum": ret.get("maximum", INT64_MAX)}


class Timestamp(fields.DateTime):
    """A stored time with its offset, as `date-time` requires: the models keep naive UTC (models.base.utcnow)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)


class ErrorBodySchema(Schema):
    code = fields.String(metadata={"description": "Stable and machine-readable, e.g. not_found, invalid"})
    message = fields.String(metadata={"description": "For a person"})
    details = fields.Raw(metadata={"description": "Optional: the field at fault, per-field problems, failed files"})


class ErrorSchema(Schema):
    """Every error answer, whatever its status."""

    error = fields.Nested(ErrorBodySchema)


# ---- accounts ------------------------------------------------------------------------------


class UserSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    display_name = fields.String()
    is_admin = fields.Boolean()
    created_at = Timestamp()


class TokenSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String(metadata={"description": "The first characters of the token, to recognise it"})
    created_at = Timestamp()
    last_used_at = Timestamp(allow_none=True)


class NewTokenSchema(TokenSchema):
    token = fields.String(metadata={"description": "The secret; shown only in this response"})


class TokenArgs(Schema):
    name = fields.String(required=True, metadata=name_rules(120, "What the token is for (1 to 120 characters)"))


# ---- datasets ------------------------------------------------------------------------------


class AttributeSchema(Schema):
    name = fields.String(required=True, metadata=name_rules(MAX_ATTRIBUTE_NAME, f"Unique within the label, 1 to {MAX_ATTRIBUTE_NAME} characters"))
    type = fields.String(required=True, metadata={"enum": ["text", "number", "checkbox", "select"]})
    # A Function: a definition without values is a dict whose attribute `values` is dict.values.
    # Types other than select have none: [] rather than null, as an array never is null.
    values = fields.Function(
        lambda a: a.get("values") or [],
        metadata={"type": "array", "items": {"type": "string"}, "description": "select: the distinct choices; [] for other types"},
    )
    default = fields.Raw(metadata={"description": "Optional; text, a number, true/false or one of values, by type"})


class LabelSchema(Schema):
    id = fields.Integer()
    dataset_id = fields.Integer()
    name = fields.String()
    color = fields.String(metadata={"description": "#rrggbb"})
    shortcut = fields.String(allow_none=True, metadata={"description": "One key, 0-9 or a-z"})
    default_shape = fields.String(metadata={"enum": list(SHAPES)})
    with_text = fields.Boolean(metadata={"description": "Shapes of this label carry an OCR transcription"})
    attributes = fields.List(fields.Nested(AttributeSchema))
    unclassified = fields.Boolean()
    position = fields.Integer(metadata={"description": "Display order, smallest first"})
    image_count = fields.Integer()
    annotation_count = fields.Integer()


# Label requests: the types are checked here, the values (unique names, shapes per dataset type,
# attribute definitions) in services.labels, so the pages and the API answer alike.
class LabelUpdateArgs(Schema):
    name = fields.String(metadata=name_rules(LABEL_NAME, f"1 to {LABEL_NAME} characters, unique in the dataset (any case)"))
    color = fields.String(metadata={"description": "#rrggbb", "example": "#e6194b", "pattern": COLOR})
    shortcut = fields.String(allow_none=True, metadata={
        "description": "One key, 0-9 or a-z (lower-cased), unique in the dataset; null or empty for none",
        "pattern": r"^\s*[0-9A-Za-z]?\s*$",
    })
    default_shape = fields.String(metadata={"enum": list(SHAPES), "description": "One of the shapes the dataset type allows"})
    with_text = fields.Raw(metadata={"type": "boolean"})
    attributes = fields.Raw(metadata={
        "type": "array", "maxItems": 50, "items": {"$ref": "#/components/schemas/Attribute"},
        "description": "Attribute definitions (replaces the list)",
    })
    unclassified = fields.Raw(metadata={"type": "boolean", "description": "At most one label per dataset"})
    position = fields.Integer(strict=True, metadata={"minimum": 0, "maximum": INT32_MAX})  # an INTEGER column


class LabelCreateArgs(LabelUpdateArgs):
    name = fields.String(required=True, metadata=name_rules(LABEL_NAME, f"1 to {LABEL_NAME} characters, unique in the dataset (any case)"))


class LabelMergeArgs(Schema):
    label_ids = fields.List(fields.Integer(strict=True), required=True, metadata={"description": "The labels to merge", "minItems": 1})
    name = fields.String(required=True, metadata=name_rules(LABEL_NAME, "The label to merge into: an existing one, or a new one"))
    color = fields.String(metadata={"description": "#rrggbb; by default the existing target's or the first label's", "pattern": COLOR})


class LabelOrderArgs(Schema):
    label_ids = fields.List(fields.Integer(strict=True), required=True, metadata={"description": "Every label id, in the new order"})


class LabelCopyArgs(Schema):
    from_dataset_id = fields.Integer(strict=True, required=True, metadata={"description": "A dataset the caller may see"})


class LabelCopySchema(Schema):
    copied = fields.List(fields.String(), metadata={"description": "Names of the labels copied"})
    skipped = fields.List(fields.String(), metadata={"description": "Names this dataset already has"})
    shortcuts_dropped = fields.List(fields.String(), metadata={"description": "Copied without their shortcut, already in use here"})
    shapes_changed = fields.List(fields.String(), metadata={"description": "Copied with another default shape (not allowed in this type)"})
    message = fields.String()
    labels = fields.List(fields.Nested(LabelSchema), metadata={"description": "This dataset's labels afterwards"})


class CropSchema(Schema):
    id = fields.Integer(metadata={"description": "The annotation's id"})
    image_id = fields.Integer()
    crop_uri = fields.String(allow_none=True, metadata={
        "description": "The crop as data:image/webp;base64,...; null when the stored image is missing or cannot be decoded",
    })
    index = fields.Integer(metadata={"description": "The crop's place among its image's crops of the label, from 0 (as the crops ZIP names it)"})


class CropPageSchema(Schema):
    items = fields.List(fields.Nested(CropSchema))
    total = fields.Integer(metadata={"description": "The label's boxes, polygons and circles"})
    next_cursor = fields.Integer(allow_none=True, metadata={"description": "Pass as cursor for the next page; null on the last"})


class CropListArgs(Schema):
    limit = fields.Integer(load_default=CROP_PAGE_DEFAULT, validate=validate.Range(1, CROP_PAGE_MAX))
    cursor = fields.Integer(load_default=0, validate=validate.Range(min=0), metadata={"description": "The next_cursor of the previous page"})


class DatasetSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    type = fields.Enum(DatasetType, by_value=True)
    owner_id = fields.Integer()
    archived = fields.Boolean()
    public = fields.Boolean()
    created_at = Timestamp()
    updated_at = Timestamp()
    image_count = fields.Integer()
    annotated_count = fields.Integer()
    annotation_count = fields.Integer()
    total_bytes = fields.Integer()
    status = fields.Function(dataset_status, metadata={"enum": ["ready", "importing", "exporting", "deleting"]})
    labels = fields.List(fields.Nested(LabelSchema), metadata={"description": "On a single dataset, or with with_labels"})
    preview = fields.List(fields.String(), metadata={"description": "Up to four thumbnail URLs, with preview"})


class DatasetPageSchema(Schema):
    items = fields.List(fields.Nested(DatasetSchema))
    total = fields.Integer()
    next_offset = fields.Integer(allow_none=True)


class DatasetListArgs(Schema):
    # No load_default on the query fields: services.datasets.DatasetQuery holds the defaults.
    search = fields.String(metadata={"description": "Part of the name"})
    type = fields.String(metadata={"enum": _values(DatasetType)})
    archived = fields.Boolean(metadata={"description": "Archived datasets instead of current ones"})
    sort = fields.String(metadata={"enum": list(SORTS)})
    order = fields.String(metadata={"enum": ["asc", "desc"]})
    limit = fields.Integer(metadata={"minimum": 1, "maximum": 100})
    offset = fields.Integer(metadata={"minimum": 0})
    with_labels = fields.Boolean(load_default=False)
    preview = fields.Boolean(load_default=False, metadata={"description": "Add four thumbnail URLs to each dataset"})


class DatasetCreateArgs(Schema):
    name = fields.String(required=True, metadata=name_rules(DATASET_NAME))
    type = fields.String(required=True, metadata={"enum": _values(DatasetType)})
    description = fields.String(load_default="", metadata={"maxLength": MAX_DESCRIPTION})


class DatasetUpdateArgs(Schema):
    name = fields.String(metadata=name_rules(DATASET_NAME))
    description = fields.String(metadata={"maxLength": MAX_DESCRIPTION})
    archived = fields.Boolean()
    public = fields.Boolean()


class StatsSchema(Schema):
    images = fields.Integer()
    total_bytes = fields.Integer()
    by_state = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_split = fields.Dict(keys=fields.String(), values=fields.Integer())


class MemberSchema(Schema):
    id = fields.Integer()
    user_id = fields.Integer()
    email = fields.String(attribute="user.email")
    role = fields.Enum(Role, by_value=True)
    created_at = Timestamp()


class MemberArgs(Schema):
    email = fields.String(required=True, metadata={"format": "email", "description": "A user's address"})
    role = fields.String(required=True, metadata={"enum": _values(Role)})


# ---- jobs ----------------------------------------------------------------------------------

# Job rows written by older versions keep the failure's traceback (server paths, source lines) in
# their result: it belongs in the worker's log, never in an answer.
PRIVATE_RESULT_KEYS = frozenset({"traceback"})


def public_result(job) -> dict:
    return {key: value for key, value in (job.result or {}).items() if key not in PRIVATE_RESULT_KEYS}


class JobSchema(Schema):
    id = fields.String()
    kind = fields.String()
    dataset_id = fields.Integer(allow_none=True)
    status = fields.Enum(JobStatus, by_value=True)
    done = fields.Integer()
    total = fields.Integer()
    percent = fields.Integer()
    message = fields.String()
    errors = fields.List(fields.Dict(), metadata={"description": "The first problems: {item, reason}"})
    error_count = fields.Integer()
    result = fields.Function(public_result, metadata={"type": "object", "description": "What the job did (counts, ids)"})
    created_at = Timestamp()
    started_at = Timestamp(allow_none=True)
    finished_at = Timestamp(allow_none=True)


# ---- images --------------------------------------------------------------------------------


def _image_url(endpoint: str):
    return lambda image: url_for(endpoint, dataset_id=image.dataset_id, image_id=image.id)


class ImageSchema(Schema):
    id = fields.Integer()
    dataset_id = fields.Integer()
    file_name = fields.String()
    folder = fields.String(attribute="folder.path", dump_default=None, allow_none=True)
    width = fields.Integer()
    height = fields.Integer()
    byte_size = fields.Integer()
    format = fields.String()
    split = fields.Enum(Split, by_value=True)
    state = fields.Enum(ImageState, by_value=True)
    external_id = fields.String(allow_none=True)
    tags = fields.Function(lambda image: [tag.name for tag in image.tags], metadata={"type": "array", "items": {"type": "string"}})
    created_at = Timestamp()
    file_url = fields.Function(_image_url("api-images.file"))
    thumbnail_url = fields.Function(_image_url("api-images.thumbnail"))


class ImagePageSchema(Schema):
    items = fields.List(fields.Nested(ImageSchema))
    total = fields.Integer()
    next_cursor = fields.Integer(allow_none=True, metadata={"description": "Pass as cursor for the next page; null on the last"})


class ImageListArgs(Schema):
    split = fields.String(metadata={"enum": _values(Split)})
    state = fields.String(metadata={"enum": _values(ImageState)})
    folder = fields.String()
    tag = fields.String()
    search = fields.String(metadata={"description": "Part of the file name"})
    assignee = fields.String(metadata={"pattern": r"^([0-9]{1,10}|none)$", "description": "A user id: the images a task gives them; none: handed back, held by nobody"})
    task_id = fields.String(metadata={"pattern": r"^[0-9]{1,10}$", "description": "The images of one labeling task"})
    limit = fields.Integer(metadata={"minimum": 1, "maximum": PAGE})
    cursor = fields.Integer(metadata={"minimum": 0, "description": "The next_cursor of the previous page"})


class UploadArgs(Schema):
    files = fields.List(
        Upload(), required=True, error_messages={"required": "Send at least one file in the multipart field 'files'"},
        metadata={"minItems": 1},
    )
    split = fields.String(metadata={"enum": _values(Split)})
    folder = fields.String(metadata={"description": "Folder path for every file, e.g. line-3/2024", **FOLDER})


class StoredFileSchema(Schema):
    name = fields.String()
    size = fields.Integer()


class FailedFileSchema(Schema):
    name = fields.String()
    reason = fields.String()


class UploadResultSchema(Schema):
    stored = fields.List(fields.Nested(StoredFileSchema), metadata={"description": "Stored; the job imports them"})
    failed = fields.List(fields.Nested(FailedFileSchema), metadata={"description": "Refused at once, with the reason"})
    job = fields.Nested(JobSchema)


class ImageUpdateArgs(Schema):
    split = fields.String(metadata={"enum": _values(Split)})
    folder = fields.String(allow_none=True, metadata={"description": "Folder path; empty or null for none", **FOLDER})
    tags = fields.List(
        fields.String(metadata=name_rules(MAX_TAG_NAME)),
        metadata={"description": "Replaces the image's tags", "maxItems": MAX_TAGS_PER_IMAGE},
    )


class ImagesDeleteArgs(Schema):
    image_ids = fields.List(fields.Integer(strict=True), metadata={"maxItems": MAX_BULK})
    names = fields.List(fields.String(), metadata={"description": "File names", "maxItems": MAX_BULK})


class DeletedSchema(Schema):
    deleted = fields.Integer()
