"""import(export(d)) == d: each format's export, made by the real export job and downloaded, then
imported into a new dataset by the real import job, gives back the same images, splits, labels
and shapes (geometry within 1e-6 of a pixel), for the dataset types the format carries."""

import io
import json

import pytest
from sqlalchemy import select

from core.extensions import db
from core.storage import get_storage
from models import Export, Image, Job, JobStatus, Label, Split
from services import exports as export_service
from services.annotations import replace_annotations
from services.images import folder_for
from services.labels import create_label
from tests.factories import image_bytes, make_dataset, make_user, token_for
from services.shapes import bbox, outline
from tests.imports.support import rounded, import_file, snapshot

SHAPES = {
    "detection": [
        ("cat", "box", {"x": 2.25, "y": 3.5, "width": 20.125, "height": 10}),
        ("dog", "polygon", {"points": [[30, 5.5], [60, 8], [45.75, 40]]}),
        ("dog", "circle", {"cx": 30, "cy": 24, "r": 12}),
    ],
    "segmentation": [("cat", "polygon", {"points": [[1, 1], [40, 2.5], [20, 30]]}), ("dog", "box", {"x": 5, "y": 5, "width": 10, "height": 8})],
    "classification": [("cat", "tag", {})],
    "multilabel": [("cat", "tag", {}), ("dog", "tag", {})],
}


IMAGES = [("a.jpg", "", Split.train, None), ("b.jpg", "park", Split.validation, 1), ("c.jpg", "", Split.test, 0)]


def make_dataset_with_images(owner, dataset_type: str, name: str, annotated: bool):
    """Three stored 64x48 images in three splits (one in a folder), two labels; annotated, the
    first with every shape of the type, the second with one, the third with none."""
    dataset = make_dataset(owner, name=name, type=dataset_type)
    allowed = {"detection": "box", "segmentation": "polygon"}.get(dataset_type, "tag")
    labels = {label: create_label(dataset, name=label, default_shape=allowed) for label in ("cat", "dog")} if annotated else {}
    for seed, (file_name, folder, split, keep) in enumerate(IMAGES, start=1):
        stored = get_storage().put_stream(io.BytesIO(image_bytes((64, 48), seed=seed)))
        image = Image(dataset_id=dataset.id, file_name=file_name, folder_id=folder_for(dataset.id, folder) if folder else None,
                      storage_key=stored.key, width=64, height=48, byte_size=stored.size, format="jpeg",
                      split=split if annotated else Split.unassigned)
        db.session.add(image)
        db.session.commit()
        shapes = SHAPES[dataset_type][:keep]
        if annotated and shapes:
            replace_annotations(image, owner, [{"label_id": labels[l].id, "shape": s, "geometry": g} for l, s, g in shapes])
    return dataset


def exported(client, run_jobs, dataset, owner, **options):
    export = export_service.create_export(dataset, owner, options)
    run_jobs()
    export = db.session.get(Export, export.id)
    assert db.session.get(Job, export.job_id).status == JobStatus.finished, db.session.get(Job, export.job_id).message
    response = client.get(f"/api/v1/exports/{export.id}/download", headers=token_for(owner))
    assert response.status_code == 200
    return io.BytesIO(response.data), export.file_name


def by_name(held: dict) -> dict:
    """Keyed by file name: a format without folders brings the images back at the root."""
    return {path.rsplit("/", 1)[-1]: value for path, value in held.items()}


CASES = [
    ("coco", "detection", {"include_images": "true"}),
    ("coco", "segmentation", {"include_images": "true"}),
    ("voc", "detection", {}),
    ("yolo", "detection", {}),
    ("yolo", "segmentation", {"yolo_shapes": "polygons"}),
    ("json", "detection", {}),
    ("json", "classification", {}),
    ("csv", "detection", {}),
    ("zip", "classification", {}),
    ("zip", "multilabel", {}),
    ("zip", "detection", {}),
    # Percent exports: Loupe JSON says so itself; the others are imported with coordinates=percent.
    ("json", "detection", {"coordinates": "percent"}),
    ("csv", "detection", {"coordinates": "percent"}),
    ("zip", "detection", {"coordinates": "percent"}),
    ("coco", "detection", {"include_images": "true", "coordinates": "percent"}),
]


@pytest.mark.parametrize("fmt, dataset_type, options", CASES, ids=[f"{c[0]}-{c[1]}" + ("-percent" if c[2].get("coordinates") else "") for c in CASES])
def test_importing_an_export_gives_back_the_dataset(app_ctx, client, run_jobs, fmt, dataset_type, options):
    owner = make_user()
    source = make_dataset_with_images(owner, dataset_type, "source", annotated=True)
    file, name = exported(client, run_jobs, source, owner, format=fmt, **options)
    # A format whose file holds no images is imported into a dataset that has them.
    target = (make_dataset_with_images(owner, dataset_type, "copy", annotated=False) if fmt in WITHOUT_IMAGES
              else make_dataset(owner, name="copy", type=dataset_type))
    said = {"coordinates": "percent"} if options.get("coordinates") == "percent" and fmt != "json" else {}
    job = import_file(client, run_jobs, target, owner, fmt, file, name, **said)
    assert job.status == JobStatus.finished, job.message
    assert job.result["failed"] == 0 and job.result["unmatched"] == 0, job.errors
    original, copy = by_name(snapshot(source.id)), by_name(snapshot(target.id))
    assert set(copy) == set(original)
    for image_name, held in original.items():
        got = copy[image_name]
        assert [a[:3] for a in got["annotations"]] == expected(fmt, options, held["annotations"]), image_name
        if fmt != "zip" or dataset_type == "detection":
            assert got["split"] == held["split"], image_name
    labels = lambda d: db.session.scalars(select(Label.name).where(Label.dataset_id == d.id).order_by(Label.position)).all()
    assert labels(target) == labels(source)


WITHOUT_IMAGES = ("json", "csv")


def expected(fmt: str, options: dict, annotations) -> list:
    """What a format carries of the annotations: VOC and YOLO hold every area shape as its box, or
    (YOLO segmentation) as its outline."""
    if fmt not in ("voc", "yolo"):
        return [a[:3] for a in annotations]
    carried = []
    for label, shape, geometry, *_ in annotations:
        if options.get("yolo_shapes") == "polygons":
            carried.append((label, "polygon", rounded({"points": outline(shape, json.loads(geometry))})))
        else:
            x, y, w, h = bbox(shape, json.loads(geometry))
            carried.append((label, "box", rounded({"x": x, "y": y, "width": w, "height": h})))
    return sorted(carried)
