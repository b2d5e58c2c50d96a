"""Grid labeling: classify many images with one key press, and undo it.

Every image's change goes through `services.annotations.replace_annotations`, so each one is a
validated revision that moves the image's state and keeps the counters. Only whole-image class
tags (shape "tag") are touched; boxes, polygons and the rest stay as they are.

The undo token is a signed (and compressed) record of each changed image's tags before and after
the change; undoing restores the "before" tags of every image whose tags are still the "after"
ones (someone else changed the others since, and they are reported, never overwritten).
"""

from collections import defaultdict

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from core.errors import INT64_MAX, Conflict, Invalid, NotFound, is_id_list, is_int
from core.extensions import db
from core.permissions import annotatable, is_admin, role_of
from models import SINGLE_TAG_TYPES, Annotation, Dataset, DatasetType, Image, Label, User
from services.annotations import annotation_dict, replace_annotations

MAX_IDS = 1000
CLASSIFY_TYPES = (DatasetType.classification, DatasetType.multilabel, DatasetType.anomaly)
MODES = ("replace", "toggle")
UNDO_MAX_AGE = 24 * 3600
_SALT = "loupe.grid-undo"
NOT_ALLOWED = "you may not annotate this image"
_TAG_FIELDS = ("label_id", "shape", "geometry", "attributes", "text", "source", "score")


def supports_grid_labeling(dataset: Dataset) -> bool:
    return dataset.type in CLASSIFY_TYPES


def default_mode(dataset: Dataset) -> str:
    """Classification and anomaly images carry one class: a key replaces it. Multilabel toggles."""
    return "replace" if dataset.type in SINGLE_TAG_TYPES else "toggle"


def _parse_ids(image_ids) -> list[int]:
    if not is_id_list(image_ids, INT64_MAX):
        raise Invalid("image_ids must be a list of image ids", details={"field": "image_ids"})
    ids = list(dict.fromkeys(image_ids))
    if not ids:
        raise Invalid("Select at least one image first", details={"field": "image_ids"})
    if len(ids) > MAX_IDS:
        raise Invalid(f"At most {MAX_IDS} images at once, got {len(ids)}", details={"field": "image_ids"})
    return ids


def _label_of(dataset: Dataset, label_id) -> Label:
    if not is_int(label_id):
        raise Invalid("label_id must be the id of a label of this dataset", details={"field": "label_id"})
    label = db.session.get(Label, label_id)
    if label is None or label.dataset_id != dataset.id:
        raise Invalid(f"{label_id} is not a label of this dataset", details={"field": "label_id"})
    return label


def _images(dataset: Dataset, ids: list[int]) -> list[Image]:
    """The images in request order; ids that are not images of this dataset are an error."""
    found = {i.id: i for i in db.session.scalars(select(Image).where(Image.dataset_id == dataset.id, Image.id.in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"Images not in this dataset: {', '.join(map(str, missing[:20]))}", details={"image_ids": missing[:100]})
    return [found[i] for i in ids]


def _annotations_of(ids: list[int]) -> dict[int, list[dict]]:
    rows = db.session.scalars(select(Annotation).where(Annotation.image_id.in_(ids)).order_by(Annotation.image_id, Annotation.id))
    by_image = defaultdict(list)
    for row in rows:
        by_image[row.image_id].append(annotation_dict(row))
    return by_image


def _bare(tag: dict) -> dict:
    return {k: tag.get(k) for k in _TAG_FIELDS}


def _tag_key(tags: list[dict]) -> list:
    """A comparable form of a tag set (label ids with their attributes and text)."""
    return sorted(
        (t["label_id"], repr(sorted((t.get("attributes") or {}).items())), t.get("text") or "", t.get("source") or "human", t.get("score"))
        for t in tags
    )


def _new_tag(label: Label) -> dict:
    return {"label_id": label.id, "shape": "tag", "geometry": {}, "attributes": {}, "text": None, "source": "human", "score": None}


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _apply(image: Image, user: User, current: list[dict], tags: list[dict], revision: int) -> None:
    """Save `tags` as the image's class tags, keeping every other shape (and its author).

    `revision` is the one `current` was read at: a save by someone else since is a conflict.
    """
    others = [a for a in current if a["shape"] != "tag"]
    payload = [_bare(t) for t in tags] + [{k: v for k, v in a.items() if k != "author_id"} for a in others]
    replace_annotations(image, user, payload, revision)


def _save_all(user: User, images: list[Image], plan: dict[int, list[dict]], current: dict[int, list[dict]], skipped: list[dict]) -> list[int]:
    revisions = {i.id: i.revision for i in images}  # read in the same transaction as `current`
    changed = []
    for image in images:
        if image.id not in plan:
            continue
        try:
            _apply(image, user, current.get(image.id, []), plan[image.id], revisions[image.id])
        except (Conflict, Invalid) as exc:
            db.session.rollback()
            skipped.append({"image_id": image.id, "reason": exc.message})
            continue
        changed.append(image.id)
    return changed


def check_classification(dataset: Dataset, label_id, mode: str | None = None) -> tuple[Label, str]:
    """The label and mode of a classification, refused before any image is touched."""
    if not supports_grid_labeling(dataset):
        raise Invalid(f"Grid labeling is for classification, multilabel and anomaly datasets, not {dataset.type.value}")
    mode = mode or default_mode(dataset)
    if mode not in MODES:
        raise Invalid(f"mode must be one of {', '.join(MODES)}", details={"field": "mode"})
    return _label_of(dataset, label_id), mode


def classify_images(dataset: Dataset, user: User, image_ids, label_id, mode: str | None = None, toggle: str | None = None) -> dict:
    """Give the images the label as their class, in one call for the whole selection (at most 1000).

    mode "replace" (classification, anomaly): the label becomes the image's one tag.
    mode "toggle" (multilabel): when every selected image has the tag it is removed from all,
    otherwise it is added to those missing it. Non-tag shapes are never touched. `toggle` ("add"
    or "remove") fixes that direction instead, for a selection classified in several calls.

    Returns {"changed": [ids], "skipped": [{"image_id", "reason"}], "unchanged": [ids], "action",
    "label_id", "undo": token}. Images the user may not annotate are skipped, not an error.
    """
    label, mode = check_classification(dataset, label_id, mode)
    ids = _parse_ids(image_ids)
    images = _images(dataset, ids)
    allowed = annotatable(user, dataset, images)
    skipped = [{"image_id": i.id, "reason": NOT_ALLOWED} for i in images if i.id not in allowed]
    images = [i for i in images if i.id in allowed]
    current = _annotations_of([i.id for i in images])
    tags_of = {i.id: [a for a in current.get(i.id, []) if a["shape"] == "tag"] for i in images}
    has = {i.id for i in images if any(t["label_id"] == label.id for t in tags_of[i.id])}

    if mode == "toggle" and (toggle == "remove" if toggle else images and len(has) == len(images)):
        action = "remove"
        plan = {i.id: [t for t in tags_of[i.id] if t["label_id"] != label.id] for i in images}
    elif mode == "toggle" and dataset.type not in SINGLE_TAG_TYPES:
        action = "add"
        plan = {i.id: tags_of[i.id] + [_new_tag(label)] for i in images if i.id not in has}
    else:
        action = "set"
        plan = {i.id: [_new_tag(label)] for i in images if [t["label_id"] for t in tags_of[i.id]] != [label.id]}
    unchanged = [i.id for i in images if i.id not in plan]

    before = {i: [_bare(t) for t in tags_of[i]] for i in plan}
    changed = _save_all(user, images, plan, current, skipped)
    undo = {str(i): {"before": before[i], "after": [_bare(t) for t in plan[i]]} for i in changed}
    token = _serializer().dumps({"dataset_id": dataset.id, "user_id": user.id, "images": undo}) if changed else None
    return {"changed": changed, "skipped": skipped, "unchanged": unchanged, "action": action, "label_id": label.id, "undo": token}


def undo_classification(dataset: Dataset, user: User, token) -> dict:
    """Put back the class tags a classify_images() call replaced, as new revisions.

    Images whose tags changed since (someone else, or a later classification not undone first)
    are skipped and reported.
    """
    if not isinstance(token, str) or not token:
        raise Invalid("undo must be the token a classification returned", details={"field": "undo"})
    try:
        data = _serializer().loads(token, max_age=UNDO_MAX_AGE)
    except BadSignature:
        raise Invalid("This undo token is invalid or has expired", details={"field": "undo"}) from None
    if data.get("dataset_id") != dataset.id or data.get("user_id") != user.id:
        raise Invalid("This undo token belongs to another dataset or person", details={"field": "undo"})
    entries = {int(k): v for k, v in data["images"].items()}
    existing = db.session.scalars(select(Image).where(Image.dataset_id == dataset.id, Image.id.in_(list(entries)))).all()
    order = {image_id: n for n, image_id in enumerate(entries)}
    images = sorted(existing, key=lambda i: order[i.id])
    skipped = [{"image_id": i, "reason": "the image was deleted"} for i in entries if i not in {e.id for e in existing}]
    allowed = annotatable(user, dataset, images)
    skipped += [{"image_id": i.id, "reason": NOT_ALLOWED} for i in images if i.id not in allowed]
    images = [i for i in images if i.id in allowed]
    current = _annotations_of([i.id for i in images])
    plan = {}
    for image in images:
        tags = [a for a in current.get(image.id, []) if a["shape"] == "tag"]
        if _tag_key(tags) != _tag_key(entries[image.id]["after"]):
            skipped.append({"image_id": image.id, "reason": "its classes were changed since"})
            continue
        plan[image.id] = entries[image.id]["before"]
    changed = _save_all(user, images, plan, current, skipped)
    return {"changed": changed, "skipped": skipped}


def grid_annotations(image_ids: list[int]) -> dict[int, list[Annotation]]:
    """The annotations of a page of grid images, in one query, by image id."""
    by_image = defaultdict(list)
    if image_ids:
        for row in db.session.scalars(select(Annotation).where(Annotation.image_id.in_(image_ids)).order_by(Annotation.id)):
            by_image[row.image_id].append(row)
    return by_image


def palette(dataset: Dataset) -> list[Label]:
    return list(db.session.scalars(select(Label).where(Label.dataset_id == dataset.id).order_by(Label.position, Label.id)))


def may_label_in_grid(dataset: Dataset, user: User) -> bool:
    """Whether the grid offers its label palette: a grid-labeling dataset and a person who annotates there."""
    if not supports_grid_labeling(dataset) or not user.is_authenticated:
        return False
    return is_admin(user) or role_of(user, dataset) is not None


