"""Label jobs on datasets with thousands of annotations: merge, delete, refresh counters; re-runs change nothing."""

from sqlalchemy import func, insert, select

from core.extensions import db
from models import (
    Annotation,
    AnnotationRevision,
    Dataset,
    Image,
    ImageState,
    Job,
    JobStatus,
    Label,
)
from services import labels as service
from services.jobs import rerun_job
from tests.factories import make_dataset, make_user
from tests.support import insert_images


def _labels(dataset, *names, shape="tag") -> list[Label]:
    return [service.create_label(dataset, name=name, default_shape=shape) for name in names]


def _annotate(rows: list[dict]) -> None:
    for row in rows:
        row.setdefault("geometry", {})
        row.setdefault("attributes", {})
        row.setdefault("source", "human")
    db.session.execute(insert(Annotation), rows)
    db.session.commit()


def _exact(dataset_id: int) -> dict:
    """Counters computed from the rows, to compare with the kept ones."""
    counts = {}
    for label in db.session.scalars(select(Label).where(Label.dataset_id == dataset_id)):
        annotations = db.session.scalar(select(func.count(Annotation.id)).where(Annotation.label_id == label.id))
        images = db.session.scalar(select(func.count(func.distinct(Annotation.image_id))).where(Annotation.label_id == label.id))
        counts[label.name] = (images, annotations)
    return counts


def _kept(dataset_id: int) -> dict:
    return {label.name: (label.image_count, label.annotation_count) for label in db.session.scalars(select(Label).where(Label.dataset_id == dataset_id))}


def _revisions(action: str) -> int:
    return db.session.scalar(select(func.count(AnnotationRevision.id)).where(AnnotationRevision.action == action))


def _dataset_annotations(dataset_id: int) -> int:
    return db.session.scalar(select(func.count(Annotation.id)).join(Image, Image.id == Annotation.image_id).where(Image.dataset_id == dataset_id))


def _classification_world(images: int = 1500):
    """Tags a, b, c by turn; the first 100 images (wrongly) carry both a and b."""
    owner = make_user()
    dataset = make_dataset(owner, name="Parts", type="classification")
    a, b, c = _labels(dataset, "a", "b", "c")
    ids = insert_images(dataset, images, state=ImageState.in_progress)
    rows = [{"image_id": image_id, "label_id": (a, b, c)[i % 3].id, "shape": "tag"} for i, image_id in enumerate(ids)]
    rows += [{"image_id": image_id, "label_id": (b if i % 3 == 0 else a).id, "shape": "tag"} for i, image_id in enumerate(ids[:100]) if i % 3 != 2]
    _annotate(rows)
    return owner, dataset, (a, b, c), ids


def test_merge_moves_thousands_of_tags_keeps_one_tag_per_image_and_leaves_exact_counters(app_ctx, run_jobs):
    owner, dataset, (a, b, c), ids = _classification_world()
    touched = db.session.scalar(select(func.count(func.distinct(Annotation.image_id))).where(Annotation.label_id.in_([a.id, b.id])))
    job = service.request_merge(dataset, [a.id, b.id], "ab", "#00aa00", owner)
    assert job.total == touched == 1000
    run_jobs()

    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished, job.message
    assert job.done == job.total == 1000
    names = {label.name: label for label in db.session.scalars(select(Label).where(Label.dataset_id == dataset.id))}
    assert set(names) == {"ab", "c"}
    target = names["ab"]
    assert target.color == "#00aa00" and job.result["label_id"] == target.id
    per_image = db.session.execute(
        select(Annotation.image_id, func.count()).where(Annotation.shape == "tag").group_by(Annotation.image_id)
    ).all()
    assert len(per_image) == len(ids) and {n for _, n in per_image} == {1}, "every image keeps exactly one tag"
    assert _kept(dataset.id) == _exact(dataset.id) == {"ab": (1000, 1000), "c": (500, 500)}
    dataset = db.session.get(Dataset, dataset.id)
    assert dataset.annotation_count == _dataset_annotations(dataset.id) == 1500
    assert dataset.annotated_count == 1500
    assert _revisions("merge_labels") == 1000
    revision = db.session.scalar(select(AnnotationRevision).where(AnnotationRevision.image_id == ids[0]))
    assert revision.author_id == owner.id and [r["label_id"] for r in revision.annotations] == [target.id]
    assert db.session.get(Image, ids[0]).revision == 1


def test_a_merge_run_again_changes_nothing(app_ctx, run_jobs):
    owner, dataset, (a, b, c), ids = _classification_world(300)
    job = service.request_merge(dataset, [a.id, b.id], "ab", "#00aa00", owner)
    run_jobs()
    before = (_exact(dataset.id), _revisions("merge_labels"), _dataset_annotations(dataset.id))
    job = db.session.get(Job, job.id)
    job.status = JobStatus.failed  # as if the worker had died after its last chunk
    db.session.commit()
    rerun_job(job)
    run_jobs()
    assert db.session.get(Job, job.id).status == JobStatus.finished
    assert (_exact(dataset.id), _revisions("merge_labels"), _dataset_annotations(dataset.id)) == before
    assert _kept(dataset.id) == before[0]


def test_merge_into_an_existing_label_keeps_it_and_moves_boxes(app_ctx, run_jobs):
    owner = make_user()
    dataset = make_dataset(owner, name="Street", type="detection")
    car, truck, bus = _labels(dataset, "Car", "truck", "bus", shape="box")
    ids = insert_images(dataset, 700)
    box = {"x": 1, "y": 1, "width": 5, "height": 5}
    _annotate([
        {"image_id": image_id, "label_id": label.id, "shape": "box", "geometry": box}
        for image_id in ids for label in (car, truck, truck) if image_id % 2 or label is car
    ])
    job = service.request_merge(dataset, [truck.id], "car", None, owner)  # the name matches Car in any case
    run_jobs()
    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished, job.message
    assert job.result["label_id"] == car.id
    assert db.session.get(Label, truck.id) is None and db.session.get(Label, car.id).name == "Car"
    odd = sum(1 for i in ids if i % 2)
    assert _kept(dataset.id) == _exact(dataset.id) == {"Car": (700, 700 + 2 * odd), "bus": (0, 0)}
    assert _revisions("merge_labels") == odd
    assert db.session.get(Dataset, dataset.id).annotation_count == 700 + 2 * odd


def test_delete_label_removes_its_annotations_with_a_revision_per_image_then_the_label(app_ctx, run_jobs):
    owner = make_user()
    dataset = make_dataset(owner, name="Street", type="detection")
    car, bus = _labels(dataset, "car", "bus", shape="box")
    ids = insert_images(dataset, 1200)
    _annotate(
        [{"image_id": image_id, "label_id": car.id, "shape": "box"} for image_id in ids for _ in range(2)]
        + [{"image_id": image_id, "label_id": bus.id, "shape": "box"} for image_id in ids[:400]]
    )
    job = service.request_delete(dataset, car, owner)
    assert job.total == 1200
    run_jobs()
    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished, job.message
    assert job.done == 1200 and job.result == {"deleted_label_id": car.id, "images": 1200}
    assert db.session.get(Label, car.id) is None
    assert _kept(dataset.id) == _exact(dataset.id) == {"bus": (400, 400)}
    assert db.session.get(Dataset, dataset.id).annotation_count == _dataset_annotations(dataset.id) == 400
    assert _revisions("delete_label") == 1200
    last = db.session.scalar(select(AnnotationRevision).where(AnnotationRevision.image_id == ids[-1]))
    assert last.annotations == [] and last.author_id == owner.id

    job.status = JobStatus.failed
    db.session.commit()
    rerun_job(job)
    run_jobs()
    assert db.session.get(Job, job.id).status == JobStatus.finished
    assert _revisions("delete_label") == 1200 and _exact(dataset.id) == {"bus": (400, 400)}


def test_asking_twice_to_delete_a_label_gives_the_same_job(app_ctx):
    owner = make_user()
    dataset = make_dataset(owner, type="detection")
    (car,) = _labels(dataset, "car", shape="box")
    assert service.request_delete(dataset, car, owner).id == service.request_delete(dataset, car, owner).id


def test_refresh_counters_recomputes_every_label_and_the_dataset(app_ctx, run_jobs):
    owner, dataset, (a, b, c), ids = _classification_world(600)
    for label in (a, b, c):
        label.image_count, label.annotation_count = 99999, -3
    db.session.get(Dataset, dataset.id).annotation_count = 5
    db.session.commit()
    job = service.request_refresh_counters(dataset, owner)
    run_jobs()
    assert db.session.get(Job, job.id).status == JobStatus.finished
    assert _kept(dataset.id) == _exact(dataset.id)
    assert _kept(dataset.id)["a"] == (200 + 33, 200 + 33)
    assert db.session.get(Dataset, dataset.id).annotation_count == _dataset_annotations(dataset.id)


def test_the_dataset_refresh_counters_job_also_recounts_labels(app_ctx, run_jobs):
    from services.datasets import request_refresh_counters

    owner, dataset, (a, b, c), ids = _classification_world(90)
    a.image_count = 12345
    db.session.commit()
    request_refresh_counters(dataset, owner)
    run_jobs()
    assert _kept(dataset.id) == _exact(dataset.id)
