"""Labels (classes) of a dataset: validate, create, update, reorder, copy; merge and delete are jobs."""

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.errors import Conflict, Invalid, NotFound, is_finite_number, is_id_list, is_int
from core.extensions import db
from core.permissions import can, sees_all_images, visible_images
from models import Annotation, Dataset, Image, Job, JobStatus, Label, User
from models.dataset import SHAPES_BY_TYPE
from services.job_kinds import DELETE_LABEL, MERGE_LABELS, REFRESH_LABEL_COUNTERS
from services.jobs import active_jobs, start_job

MAX_NAME = 200
LABEL_JOBS = (DELETE_LABEL.key, MERGE_LABELS.key)  # the jobs that remove labels
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_NAME = 100
MAX_VALUES = 200
MAX_VALUE = 200
MAX_TEXT_DEFAULT = 1000
ATTRIBUTE_TYPES = ("text", "number", "checkbox", "select")
FIELDS = ("name", "color", "shortcut", "default_shape", "with_text", "attributes", "unclassified", "position")
COLOR = re.compile(r"#[0-9a-fA-F]{6}")
SHORTCUT = re.compile(r"[0-9a-z]")


def _invalid(field: str, message: str) -> Invalid:
    return Invalid(message, details={"field": field})


# ---- reading ------------------------------------------------------------------------------------


def list_labels(dataset: Dataset) -> list[Label]:
    """The dataset's labels in display order."""
    return list(db.session.scalars(select(Label).where(Label.dataset_id == dataset.id).order_by(Label.position, Label.id)))


COUNTERS = ("image_count", "annotation_count")


def label_counters(dataset: Dataset, labels: list[Label], user: User) -> dict[int, dict]:
    """Each label's image and annotation counters as the user may see them, by label id.

    The kept counters for whoever sees every image (no query); for a labeler, counted over the
    images assigned to them in one grouped query, so the numbers tell nothing of the rest. The
    labels are left as they are: they are rows the session would write back.
    """
    if sees_all_images(user, dataset):
        return {label.id: {name: getattr(label, name) for name in COUNTERS} for label in labels}
    shown = visible_images(select(Image.id), user, dataset).subquery()
    rows = db.session.execute(
        select(Annotation.label_id, func.count(func.distinct(Annotation.image_id)), func.count(Annotation.id))
        .join(shown, shown.c.id == Annotation.image_id)
        .group_by(Annotation.label_id)
    )
    counts = {label_id: {"image_count": images, "annotation_count": annotations} for label_id, images, annotations in rows}
    return {label.id: counts.get(label.id, {"image_count": 0, "annotation_count": 0}) for label in labels}


def get_label(dataset: Dataset, label_id: int) -> Label:
    """One label of this dataset, or NotFound."""
    label = db.session.get(Label, label_id)
    if label is None or label.dataset_id != dataset.id:
        raise NotFound(f"Label {label_id} not found", details={"field": "label_id"})
    return label


def allowed_shapes(dataset: Dataset) -> tuple[str, ...]:
    return SHAPES_BY_TYPE[dataset.type]


# ---- validation: every check runs before anything is changed -------------------------------------


def clean_name(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid("name", "A label needs a name")
    value = value.strip()
    if len(value) > MAX_NAME:
        raise _invalid("name", f"The label name is longer than {MAX_NAME} characters")
    return value


def clean_color(value) -> str:
    if not isinstance(value, str) or not COLOR.fullmatch(value.strip()):
        raise _invalid("color", f"The color must be written #rrggbb (for example #e6194b), not {value!r}")
    return value.strip().lower()


def clean_shortcut(value) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or not SHORTCUT.fullmatch(value.strip().lower()):
        raise _invalid("shortcut", f"The shortcut must be a single key 0-9 or a-z, not {value!r}")
    return value.strip().lower()


def clean_shape(dataset: Dataset, value) -> str:
    shapes = allowed_shapes(dataset)
    if value not in shapes:
        raise _invalid(
            "default_shape", f"The default shape {value!r} is not allowed in a {dataset.type.value} dataset; use one of {', '.join(shapes)}"
        )
    return value


def clean_flag(field: str, value) -> bool:
    if not isinstance(value, bool):
        raise _invalid(field, f"{field} must be true or false")
    return value


def clean_position(value) -> int:
    if not is_int(value) or value < 0:
        raise _invalid("position", "position must be a whole number, 0 or more")
    return value


def _clean_default(where: str, kind: str, default, values: list[str]):
    if kind == "text":
        if not isinstance(default, str) or len(default) > MAX_TEXT_DEFAULT:
            raise _invalid(where, f"{where}: the default of a text attribute must be text of at most {MAX_TEXT_DEFAULT} characters")
    elif kind == "number":
        if not is_finite_number(default):
            raise _invalid(where, f"{where}: the default of a number attribute must be a finite number, not {default!r}")
    elif kind == "checkbox":
        if not isinstance(default, bool):
            raise _invalid(where, f"{where}: the default of a checkbox attribute must be true or false, not {default!r}")
    elif default not in values:
        raise _invalid(where, f"{where}: the default {default!r} is not one of the values ({', '.join(values)})")
    return default


def clean_attributes(value) -> list[dict]:
    """Attribute definitions: [{name, type, values (select only), default (optional)}]."""
    if not isinstance(value, list):
        raise _invalid("attributes", "attributes must be a list of attribute definitions")
    if len(value) > MAX_ATTRIBUTES:
        raise _invalid("attributes", f"A label has at most {MAX_ATTRIBUTES} attributes, not {len(value)}")
    cleaned, seen = [], set()
    for index, item in enumerate(value):
        where = f"attributes[{index}]"
        if not isinstance(item, dict):
            raise _invalid(where, f"{where} must be an object with name and type")
        unknown = set(item) - {"name", "type", "values", "default"}
        if unknown:
            raise _invalid(where, f"{where} has unknown keys: {', '.join(sorted(map(str, unknown)))}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_ATTRIBUTE_NAME:
            raise _invalid(f"{where}.name", f"{where}.name must be 1 to {MAX_ATTRIBUTE_NAME} characters")
        name = name.strip()
        if name.lower() in seen:
            raise _invalid(f"{where}.name", f"Two attributes are named {name!r}; attribute names must be unique")
        seen.add(name.lower())
        kind = item.get("type")
        if kind not in ATTRIBUTE_TYPES:
            raise _invalid(f"{where}.type", f"{where} ({name}): type must be one of {', '.join(ATTRIBUTE_TYPES)}, not {kind!r}")
        values = item.get("values")
        definition = {"name": name, "type": kind}
        if kind == "select":
            if not isinstance(values, list) or not values:
                raise _invalid(f"{where}.values", f"{where} ({name}): a select attribute needs a non-empty list of values")
            if len(values) > MAX_VALUES:
                raise _invalid(f"{where}.values", f"{where} ({name}): at most {MAX_VALUES} values")
            if not all(isinstance(v, str) and v.strip() and len(v) <= MAX_VALUE for v in values):
                raise _invalid(f"{where}.values", f"{where} ({name}): every value must be non-empty text of at most {MAX_VALUE} characters")
            values = [v.strip() for v in values]
            if len(set(values)) != len(values):
                raise _invalid(f"{where}.values", f"{where} ({name}): the values must be distinct")
            definition["values"] = values
        elif values not in (None, []):
            raise _invalid(f"{where}.values", f"{where} ({name}): only select attributes have values")
        if item.get("default") is not None:
            definition["default"] = _clean_default(f"{where}.default", kind, item["default"], definition.get("values", []))
        cleaned.append(definition)
    return cleaned


def _clean(dataset: Dataset, changes: dict, label: Label | None = None) -> dict:
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise Invalid(f"Unknown label fields: {', '.join(sorted(unknown))}", details={"field": sorted(unknown)[0]})
    cleaners = {
        "name": clean_name, "color": clean_color, "shortcut": clean_shortcut,
        "default_shape": lambda v: clean_shape(dataset, v), "with_text": lambda v: clean_flag("with_text", v),
        "attributes": clean_attributes, "unclassified": lambda v: clean_flag("unclassified", v), "position": clean_position,
    }
    cleaned = {field: cleaners[field](value) for field, value in changes.items()}
    others = select(Label).where(Label.dataset_id == dataset.id)
    if label is not None:
        others = others.where(Label.id != label.id)
    if "name" in cleaned:
        clash = db.session.scalar(others.where(func.lower(Label.name) == cleaned["name"].lower()).limit(1))
        if clash:
            raise Conflict(f"This dataset already has a label named {clash.name!r}", details={"field": "name"})
    if cleaned.get("shortcut"):
        clash = db.session.scalar(others.where(Label.shortcut == cleaned["shortcut"]).limit(1))
        if clash:
            raise Conflict(f"The shortcut {cleaned['shortcut']!r} is already used by {clash.name!r}", details={"field": "shortcut"})
    if cleaned.get("unclassified"):
        clash = db.session.scalar(others.where(Label.unclassified.is_(True)).limit(1))
        if clash:
            raise Conflict(f"{clash.name!r} is already the unclassified label; a dataset has at most one", details={"field": "unclassified"})
    return cleaned


def _commit(what: str) -> None:
    try:
        db.session.commit()
    except IntegrityError:  # two requests raced past the checks above
        db.session.rollback()
        raise Conflict(f"Another label with this name or shortcut was just saved; {what} again") from None


# ---- changes ---------------------------------------------------------------------------------


def create_label(dataset: Dataset, **fields) -> Label:
    """Add a label at the end of the list (or at `position`)."""
    fields.setdefault("default_shape", allowed_shapes(dataset)[0])
    cleaned = _clean(dataset, fields)
    if "name" not in cleaned:
        raise _invalid("name", "A label needs a name")
    if "position" not in cleaned:
        last = db.session.scalar(select(func.max(Label.position)).where(Label.dataset_id == dataset.id))
        cleaned["position"] = 0 if last is None else last + 1
    label = Label(dataset_id=dataset.id, **cleaned)
    db.session.add(label)
    _commit("create it")
    return label


def update_label(dataset: Dataset, label: Label, **changes) -> Label:
    """Change any of a label's fields; nothing changes unless all are valid."""
    cleaned = _clean(dataset, changes, label)
    for field, value in cleaned.items():
        setattr(label, field, value)
    _commit("save it")
    return label


def _labels_busy() -> Conflict:
    return Conflict("A label of this dataset is being deleted or merged; reorder the labels once that job has finished")


def reorder_labels(dataset: Dataset, label_ids) -> list[Label]:
    """Set the display order from the full list of the dataset's label ids.

    Refused while a delete or merge job of the dataset's labels is queued or running: it removes
    labels the list names. Checked again under Dataset.lock(), which those jobs take before they
    remove labels, so the check and the write are one step.
    """
    if active_jobs(dataset, *LABEL_JOBS):
        raise _labels_busy()
    Dataset.lock(dataset.id)  # the label jobs take it too before they remove labels
    if db.session.scalar(select(Job.id).where(Job.dataset_id == dataset.id, Job.kind.in_(LABEL_JOBS), Job.status.in_([JobStatus.queued, JobStatus.running])).limit(1)):
        db.session.rollback()
        raise _labels_busy()
    labels = list_labels(dataset)
    if not is_id_list(label_ids):
        raise _invalid("label_ids", "label_ids must be a list of label ids")
    if len(set(label_ids)) != len(label_ids):
        raise _invalid("label_ids", "label_ids names a label twice")
    if set(label_ids) != {label.id for label in labels}:
        raise _invalid("label_ids", "label_ids must list every label of the dataset exactly once")
    by_id = {label.id: label for label in labels}
    for position, label_id in enumerate(label_ids):
        by_id[label_id].position = position
    db.session.commit()
    return list_labels(dataset)


def move_label(dataset: Dataset, label_id, direction: str) -> list[Label]:
    """Move one label one place up or down in the display order (the first stays first)."""
    order = [label.id for label in list_labels(dataset)]
    try:
        moved = int(label_id)
    except (TypeError, ValueError):
        raise _invalid("label_id", "Say which label to move") from None
    if moved not in order:
        raise NotFound(f"Label {moved} not found")
    step = {"up": -1, "down": 1}.get(direction)
    if step is None:
        raise _invalid("direction", "direction must be up or down")
    index, other = order.index(moved), order.index(moved) + step
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
    return reorder_labels(dataset, order)


def copy_labels(dataset: Dataset, source_id, user: User) -> dict:
    """Copy another dataset's labels; existing names are skipped, clashing shortcuts dropped."""
    if not is_int(source_id):
        raise _invalid("from_dataset_id", "from_dataset_id must be a dataset id")
    source = db.session.get(Dataset, source_id)
    if source is None or not can(user, "dataset:view", source):
        raise NotFound(f"Dataset {source_id} not found", details={"field": "from_dataset_id"})
    if source.id == dataset.id:
        raise _invalid("from_dataset_id", "Choose another dataset to copy labels from")
    existing = list_labels(dataset)
    names = {label.name.lower() for label in existing}
    shortcuts = {label.shortcut for label in existing if label.shortcut}
    has_unclassified = any(label.unclassified for label in existing)
    position = max((label.position for label in existing), default=-1) + 1
    result = {"copied": [], "skipped": [], "shortcuts_dropped": [], "shapes_changed": []}
    for label in list_labels(source):
        if label.name.lower() in names:
            result["skipped"].append(label.name)
            continue
        shortcut = label.shortcut
        if shortcut and shortcut in shortcuts:
            result["shortcuts_dropped"].append(label.name)
            shortcut = None
        shape = label.default_shape
        if shape not in allowed_shapes(dataset):
            shape = allowed_shapes(dataset)[0]
            result["shapes_changed"].append(label.name)
        unclassified = label.unclassified and not has_unclassified
        db.session.add(Label(
            dataset_id=dataset.id, name=label.name, color=label.color, shortcut=shortcut, default_shape=shape,
            with_text=label.with_text, attributes=list(label.attributes or []), unclassified=unclassified, position=position,
        ))
        names.add(label.name.lower())
        if shortcut:
            shortcuts.add(shortcut)
        has_unclassified = has_unclassified or unclassified
        position += 1
        result["copied"].append(label.name)
    _commit("copy")
    result["message"] = copy_message(source, result)
    return result


def copy_message(source: Dataset, result: dict) -> str:
    parts = [f"Copied {len(result['copied'])} label{'' if len(result['copied']) == 1 else 's'} from {source.name}"]
    if result["skipped"]:
        parts.append(f"skipped {', '.join(result['skipped'])} (already here)")
    if result["shortcuts_dropped"]:
        parts.append(f"dropped the shortcut of {', '.join(result['shortcuts_dropped'])} (already used)")
    if result["shapes_changed"]:
        parts.append(f"changed the default shape of {', '.join(result['shapes_changed'])} (not allowed in this dataset type)")
    return "; ".join(parts) + "."


# ---- jobs ------------------------------------------------------------------------------------


def images_with_labels(label_ids: list[int]) -> int:
    """How many images carry an annotation of any of the labels (a label job's total)."""
    if not label_ids:
        return 0
    return db.session.scalar(select(func.count(func.distinct(Annotation.image_id))).where(Annotation.label_id.in_(label_ids)))


def request_delete(dataset: Dataset, label: Label, user: User) -> Job:
    """Start the job that deletes the label's annotations (a revision per image), then the label."""
    return start_job(
        DELETE_LABEL, dataset.id, label.id, dataset=dataset, user=user,
        total=images_with_labels([label.id]), message=f"Waiting for a worker to delete {label.name}",
    )


def request_merge(dataset: Dataset, label_ids, name, color, user: User) -> Job:
    """Start the job that merges labels into the one named `name` (existing or new)."""
    if not is_id_list(label_ids) or not label_ids:
        raise _invalid("label_ids", "Choose the labels to merge (label_ids: a list of label ids)")
    label_ids = list(dict.fromkeys(label_ids))
    labels = [get_label(dataset, label_id) for label_id in label_ids]
    name = clean_name(name)
    target = db.session.scalar(select(Label).where(Label.dataset_id == dataset.id, func.lower(Label.name) == name.lower()))
    if color is None or (isinstance(color, str) and not color.strip()):
        color = (target or labels[0]).color
    color = clean_color(color)
    merged = {label.id for label in labels} | ({target.id} if target else set())
    if len(merged) < 2:
        raise _invalid("label_ids", "Choose at least two labels to merge (or one and the name of another)")
    return start_job(
        MERGE_LABELS, dataset.id, label_ids, name, color, dataset=dataset, user=user,
        total=images_with_labels([i for i in label_ids if not target or i != target.id]), message=f"Waiting for a worker to merge into {name}",
    )


def request_refresh_counters(dataset: Dataset, user: User) -> Job:
    """Start the job that recomputes the dataset's counters, its labels' and its tags' included."""
    return start_job(REFRESH_LABEL_COUNTERS, dataset.id, dataset=dataset, user=user)


def recount_labels(dataset_id: int) -> None:
    """Recompute every label's image and annotation counters from the annotations (not committed)."""
    rows = db.session.execute(
        select(Annotation.label_id, func.count(Annotation.id), func.count(func.distinct(Annotation.image_id)))
        .join(Label, Label.id == Annotation.label_id)
        .where(Label.dataset_id == dataset_id)
        .group_by(Annotation.label_id)
    ).all()
    counts = {label_id: (annotations, images) for label_id, annotations, images in rows}
    for label in db.session.scalars(select(Label).where(Label.dataset_id == dataset_id)):
        label.annotation_count, label.image_count = counts.get(label.id, (0, 0))
