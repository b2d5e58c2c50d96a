"""Label jobs: merge labels, delete a label, refresh the label counters.

Merge and delete rewrite annotations image by image in id-ordered chunks, each committed with a
revision per changed image. An image whose chunk committed no longer has annotations of the merged
or deleted labels, so a re-run (after a crash or cancel) picks up exactly the images still to do.
"""

from sqlalchemy import delete, func, select, update

from core.extensions import db
from models import Annotation, Dataset, Image, Label
from services.datasets import recount
from services.labels import images_with_labels
from services.revisions import claim_revision, record_revision
from workers.runtime import app_context, job_run

CHUNK = 200


def _next_images(label_ids: list[int]) -> list[int]:
    """The next chunk of images that still have an annotation of one of the labels."""
    if not label_ids:
        return []
    return list(db.session.scalars(
        select(Annotation.image_id).where(Annotation.label_id.in_(label_ids)).group_by(Annotation.image_id)
        .order_by(Annotation.image_id).limit(CHUNK)
    ))


def _claim(image_ids: list[int]) -> list[Image]:
    """Claim the chunk's images' next revisions (row locks, in id order) before touching their
    annotations: a save claims its image first too, so a save and a job never wait on each other
    in opposite orders."""
    images = list(db.session.scalars(select(Image).where(Image.id.in_(image_ids)).order_by(Image.id)))
    for image in images:
        claim_revision(image)
    return images


def _record(images: list[Image], user_id: int | None, action: str) -> None:
    for image in images:
        record_revision(image, user_id, action)


def _target(dataset_id: int, name: str, color: str, sources: list[Label]) -> Label:
    """The label merged into: the existing one with this name (any case), or a new one."""
    target = db.session.scalar(select(Label).where(Label.dataset_id == dataset_id, func.lower(Label.name) == name.lower()))
    if target is None:
        template = sources[0] if sources else None
        last = db.session.scalar(select(func.max(Label.position)).where(Label.dataset_id == dataset_id))
        target = Label(
            dataset_id=dataset_id, name=name, color=color, position=template.position if template else (last or 0) + 1,
            default_shape=template.default_shape if template else "tag",
            with_text=template.with_text if template else False, attributes=list(template.attributes or []) if template else [],
        )
        db.session.add(target)
    target.color = color
    db.session.commit()
    return target


def merge_labels(job_id: str, dataset_id: int, label_ids: list[int], name: str, color: str) -> dict:
    """Reassign every annotation of the labels to the target label, then delete the merged labels."""
    with app_context(), job_run(job_id) as run:
        if db.session.get(Dataset, dataset_id) is None:
            run.job.message = "The dataset no longer exists"
            return {}
        sources = list(db.session.scalars(
            select(Label).where(Label.dataset_id == dataset_id, Label.id.in_(label_ids)).order_by(Label.position, Label.id)
        ))
        target = _target(dataset_id, name, color, sources)
        source_ids = [label.id for label in sources if label.id != target.id]
        done = run.done  # a re-run continues the count of the run that stopped
        run.progress(done, done + images_with_labels(source_ids), f"Merging into {target.name}", force=True)
        removed = 0
        while image_ids := _next_images(source_ids):
            images = _claim(image_ids)
            db.session.execute(
                update(Annotation).where(Annotation.image_id.in_(image_ids), Annotation.label_id.in_(source_ids))
                .values(label_id=target.id).execution_options(synchronize_session=False)
            )
            # A whole-image class counts once per image: after the merge an image keeps one tag of
            # the target (in classification and anomaly datasets, its only tag).
            tags = db.session.execute(
                select(Annotation.id, Annotation.image_id)
                .where(Annotation.image_id.in_(image_ids), Annotation.label_id == target.id, Annotation.shape == "tag")
                .order_by(Annotation.image_id, Annotation.id)
            ).all()
            kept, duplicates = set(), []
            for annotation_id, image_id in tags:
                (duplicates.append(annotation_id) if image_id in kept else kept.add(image_id))
            if duplicates:
                db.session.execute(delete(Annotation).where(Annotation.id.in_(duplicates)).execution_options(synchronize_session=False))
                removed += len(duplicates)
            _record(images, run.job.user_id, "merge_labels")
            db.session.commit()
            done += len(image_ids)
            run.progress(done, max(run.total, done), f"Merged the annotations of {done} images", force=True)
        Dataset.lock(dataset_id)  # a reorder that checked for this job waits for it, or it for the reorder
        for label in db.session.scalars(select(Label).where(Label.id.in_(source_ids))):
            db.session.delete(label)
        recount(dataset_id)
        run.job.result = {
            "label_id": target.id, "merged_label_ids": source_ids, "images": done, "duplicate_tags_removed": removed,
        }
        run.job.message = f"Merged into {target.name}: {done} images changed"
        return run.job.result


def delete_label(job_id: str, dataset_id: int, label_id: int) -> dict:
    """Delete the label's annotations (a revision per image), then the label."""
    with app_context(), job_run(job_id) as run:
        label = db.session.get(Label, label_id)
        if label is None or label.dataset_id != dataset_id:
            run.job.message = "The label was already deleted"
            run.job.result = {"deleted_label_id": label_id, "images": run.done}
            return run.job.result
        name = label.name
        done = run.done
        run.progress(done, done + images_with_labels([label_id]), f"Deleting the annotations of {name}", force=True)
        while image_ids := _next_images([label_id]):
            images = _claim(image_ids)
            db.session.execute(
                delete(Annotation).where(Annotation.image_id.in_(image_ids), Annotation.label_id == label_id)
                .execution_options(synchronize_session=False)
            )
            _record(images, run.job.user_id, "delete_label")
            db.session.commit()
            done += len(image_ids)
            run.progress(done, max(run.total, done), f"Deleted the annotations of {done} images", force=True)
        Dataset.lock(dataset_id)  # a reorder that checked for this job waits for it, or it for the reorder
        db.session.delete(db.session.get(Label, label_id))
        recount(dataset_id)
        run.job.result = {"deleted_label_id": label_id, "images": done}
        run.job.message = f"Deleted {name} and its annotations on {done} images"
        return run.job.result


def refresh_label_counters(job_id: str, dataset_id: int) -> dict:
    """Recompute the dataset's counters and every label's image and annotation counts."""
    with app_context(), job_run(job_id) as run:
        if db.session.get(Dataset, dataset_id) is None:
            run.job.message = "The dataset no longer exists"
            return {}
        recount(dataset_id)
        labels = db.session.scalars(select(Label).where(Label.dataset_id == dataset_id).order_by(Label.position, Label.id)).all()
        run.job.result = {"labels": {label.name: {"images": label.image_count, "annotations": label.annotation_count} for label in labels}}
        run.job.message = f"Counters refreshed for {len(labels)} labels"
        return run.job.result
