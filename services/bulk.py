"""The grid's bulk actions on everything a filter matches ("select all N matching").

Which images that means is decided here, from the filter, never from the ids a browser happens to
have loaded. Up to LOUPE_BULK_SYNC_LIMIT images change within the request; more are changed by a
job (workers/bulk.py) that walks the filter in id order, one chunk per transaction, so no single
write holds the database for long. Both stop at the newest image that matched when the person
asked: images uploaded while a job runs are not swept in.
"""

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import exists, func, select

from core.errors import Invalid
from core.extensions import db
from models import Annotation, Dataset, Image, Job, User
from services import grid_labeling
from services import images as image_service
from services.images import ImageFilter, filtered_query
from services.job_kinds import BULK_EDIT
from services.jobs import start_job

CHUNK = 500  # images per transaction in a job; at most images.MAX_BULK
ACTIONS = (*image_service.BULK_CHANGES, "classify")


@dataclass
class BulkOutcome:
    count: int  # images changed, or (with a job) images the job goes through
    job: Job | None = None
    classified: dict | None = None  # classify_images()'s outcome (its skips and undo token)


def matching_ids(dataset: Dataset, user: User, f: ImageFilter, after: int = 0, upto: int | None = None, limit: int | None = None) -> list[int]:
    """Ids of the images the filter matches for this user, in id order, after `after` and up to `upto`."""
    query = filtered_query(dataset, user, f).with_only_columns(Image.id).where(Image.id > after).order_by(Image.id)
    if upto is not None:
        query = query.where(Image.id <= upto)
    return list(db.session.scalars(query.limit(limit) if limit else query))


def _check(dataset: Dataset, action: str, params: dict) -> dict:
    """Validate the parameters once; for a multilabel toggle, the direction is fixed here (see _toggle)."""
    if action != "classify":
        image_service.check_bulk_change(dataset, action, params)
        return params
    label, mode = grid_labeling.check_classification(dataset, params.get("label_id"), params.get("mode") or None)
    return {**params, "label_id": label.id, "mode": mode}


def _toggle(dataset: Dataset, user: User, f: ImageFilter, label_id: int, upto: int) -> str:
    """A toggle over many chunks must go one way for all: off when every match has the class, else on."""
    lacking = filtered_query(dataset, user, f).where(
        Image.id <= upto,
        ~exists().where(Annotation.image_id == Image.id, Annotation.label_id == label_id, Annotation.shape == "tag"),
    )
    return "add" if db.session.scalar(select(exists(lacking.with_only_columns(Image.id)))) else "remove"


def apply_chunk(dataset: Dataset, user: User, action: str, image_ids: list[int], params: dict) -> int:
    """Apply the action to one chunk of images (at most MAX_BULK); how many changed."""
    if action == "classify":
        outcome = grid_labeling.classify_images(dataset, user, image_ids, params["label_id"], params["mode"], params.get("toggle"))
        return len(outcome["changed"])
    return image_service.apply_bulk_change(dataset, action, image_ids, params)


def apply_to_filter(dataset: Dataset, user: User, action: str, f: ImageFilter, params: dict) -> BulkOutcome:
    """Apply a bulk action to every image the filter matches: now when few, as a job when many."""
    if action not in ACTIONS:
        raise Invalid(f"Unknown bulk action {action!r}", details={"field": "action"})
    params = _check(dataset, action, params)
    base = filtered_query(dataset, user, f.validate())
    upto = db.session.scalar(base.with_only_columns(func.max(Image.id)))
    if upto is None:
        return BulkOutcome(0)
    total = db.session.scalar(select(func.count()).select_from(base.where(Image.id <= upto).with_only_columns(Image.id).subquery()))
    if total <= current_app.config["LOUPE_BULK_SYNC_LIMIT"]:
        ids = matching_ids(dataset, user, f, upto=upto)
        if action == "classify":
            outcome = grid_labeling.classify_images(dataset, user, ids, params["label_id"], params["mode"])
            return BulkOutcome(len(outcome["changed"]), classified=outcome)
        return BulkOutcome(image_service.apply_bulk_change(dataset, action, ids, params))
    if action == "classify" and params["mode"] == "toggle":
        params = {**params, "toggle": _toggle(dataset, user, f, params["label_id"], upto)}
    job = start_job(
        BULK_EDIT, dataset.id, user.id, action, params, f.args(), upto,
        dataset=dataset, user=user, total=total, message=f"Waiting for a worker to change {total:,} images",
    )
    return BulkOutcome(total, job=job)
