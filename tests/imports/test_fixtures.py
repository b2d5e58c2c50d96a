"""Every third-party fixture (tests/fixtures/formats, see its README) through the real import job,
sent as a ZIP of its folder into a new dataset: the counts the README gives, in the database.

Several fixtures use one placeholder image under many names. A dataset keeps each image once by
its bytes, so the counts are checked on a copy whose images differ by a pixel; the fixture as it
is shows the duplicates reported per image."""

import io
import shutil

import pytest
from PIL import Image as PILImage
from PIL import PngImagePlugin
from sqlalchemy import func, select

from core.extensions import db
from formats.base import IMAGE_EXTENSIONS
from models import Image, JobStatus, Label
from tests.factories import make_dataset, make_user
from tests.imports.support import FIXTURES, import_file, label_counts, zipped


def distinct_copy(folder: str, tmp_path):
    """The fixture with each repeated image changed in one pixel (same size and format)."""
    copy = tmp_path / folder
    shutil.copytree(FIXTURES / folder, copy)
    seen = set()
    for n, path in enumerate(sorted(p for p in copy.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)):
        data = path.read_bytes()
        if data in seen:
            with PILImage.open(io.BytesIO(data)) as image:
                changed = image.convert("RGB")
            # A comment of its own makes the bytes differ, whatever the codec does with the pixels.
            if path.suffix.lower() == ".png":
                info = PngImagePlugin.PngInfo()
                info.add_text("copy", str(n))
                changed.save(path, format="PNG", pnginfo=info)
            else:
                changed.save(path, format="JPEG", quality=95, comment=f"copy {n}".encode())
            data = path.read_bytes()
        seen.add(data)
    return copy


def run(client, run_jobs, folder_path, fmt, dataset_type):
    owner = make_user()
    dataset = make_dataset(owner, type=dataset_type)
    job = import_file(client, run_jobs, dataset, owner, fmt, zipped(folder_path), "upload.zip")
    assert job.status == JobStatus.finished, job.message
    splits = dict(db.session.execute(select(Image.split, func.count()).where(Image.dataset_id == dataset.id).group_by(Image.split)).all())
    return dataset, job, {split.value: n for split, n in splits.items()}


# folder, format, dataset type, images, annotations per label, splits (None: not asserted), labels the file defines
CASES = [
    ("coco_instances", "coco", "segmentation", 2,
     {"car": 14, "chair": 5, "vase": 4, "person": 3, "tv": 2, "book": 2, "traffic light": 1, "truck": 1,
      "potted plant": 1, "refrigerator": 1, "microwave": 1, "clock": 1, "dining table": 1}, {"validation": 2}, 80),
    ("coco_with_unannotated_image", "coco", "detection", 3, {"bus": 2, "car": 1}, {"unassigned": 3}, 2),
    ("coco_subsets_attributes_datumaro", "coco", "segmentation", 2, {"a": 1, "b": 2}, {"train": 1, "validation": 1}, 3),
    ("coco_rle_compressed_panopticapi", "coco", "segmentation", 2,
     {"person": 28, "horse": 12, "truck": 2, "tree-merged": 2, "sky-other-merged": 2, "grass-merged": 2, "sports ball": 1, "gravel": 1},
     {"unassigned": 2}, 133),
    ("voc_detection", "voc", "detection", 2, {"cat": 1, "person": 1}, {"train": 1, "test": 1}, 2),
    ("yolo", "yolo", "detection", 7, {"closed_door": 10, "opened_door": 1, "bus": 8, "number": 6}, {"unassigned": 7}, 4),
    ("yolo_darknet_cvat", "yolo", "detection", 1, {"label_2": 1, "label_4": 1}, {"train": 1}, 10),
    ("yolo_ultralytics_roboflow", "yolo", "detection", 3, {"label_0": 2, "label_1": 2}, {"train": 2, "validation": 1}, 2),
    # 12 shapes: box, polygon, points and polyline, 3 each, over 2 labels.
    ("cvat_for_images_1_1", "cvat", "detection", 6, None, {"test": 2, "train": 2, "validation": 2}, 2),
    ("csv_classification", "csv", "classification", 5, {"dog": 2, "cat": 3}, None, 2),
    ("csv_multilabel", "csv", "multilabel", 6, {"dog": 3, "cat": 3, "person": 3}, None, 3),
    ("csv_multilabel_roboflow", "csv", "multilabel", 3, {"label_0": 2, "label_1": 2}, {"train": 2, "validation": 1}, 2),
    # The 5x5 images hold 5 boxes, 4 of them partly or wholly outside: those partly inside are
    # clipped to the image, the one wholly outside is counted in outside_image.
    ("csv_detection_vott", "csv", "detection", 4, None, {"train": 2, "test": 2}, 2),
    # torchvision's ImageFolder rule, keeping the root file: 2 classes, 3 labelled, 1 not.
    # (Datumaro reports 3 labels, taking label_1/label_1_1 as a label of its own.)
    ("imagenet_folders", "zip", "classification", 4, {"label_0": 1, "label_1": 2}, {"unassigned": 4}, 2),
    ("unicode_filename_image_dir", "zip", "classification", 1, {}, {"unassigned": 1}, 0),
]


@pytest.mark.parametrize("folder, fmt, dataset_type, images, per_label, splits, labels", CASES, ids=[c[0] for c in CASES])
def test_each_fixture_imports_with_its_readme_counts(app_ctx, client, run_jobs, tmp_path, folder, fmt, dataset_type, images, per_label, splits, labels):
    dataset, job, found_splits = run(client, run_jobs, distinct_copy(folder, tmp_path), fmt, dataset_type)
    assert job.result["images_in_file"] == images and job.result["images_added"] == images, (job.result, job.errors)
    assert job.result["same_image"] == 0 and job.result["unmatched"] == 0
    if per_label is not None:
        assert label_counts(dataset.id) == per_label, job.errors
        assert job.result["annotations"] == sum(per_label.values())
        assert job.result["failed"] == 0, job.errors
    if splits is not None:
        assert found_splits == splits
    assert db.session.scalar(select(func.count()).select_from(Label).where(Label.dataset_id == dataset.id)) == labels


def test_cvat_project_shapes_and_typed_attributes(app_ctx, client, run_jobs, tmp_path):
    dataset, job, _ = run(client, run_jobs, distinct_copy("cvat_for_images_1_1", tmp_path), "cvat", "detection")
    from models import Annotation

    shapes = db.session.execute(
        select(Annotation.shape, func.count()).join(Image).where(Image.dataset_id == dataset.id).group_by(Annotation.shape)
    ).all()
    assert dict(shapes) == {"box": 3, "polygon": 3, "points": 3, "polyline": 3}, job.errors
    label1 = db.session.scalar(select(Label).where(Label.dataset_id == dataset.id, Label.name == "label1"))
    types = {d["name"]: d["type"] for d in label1.attributes}
    assert types["a1"] == "checkbox" and types["a4"] == "number" and types["a3"] == "text"


def test_a_cvat_shape_without_a_label_keeps_its_image_from_being_half_applied(app_ctx, client, run_jobs, tmp_path):
    dataset, job, splits = run(client, run_jobs, distinct_copy("cvat_for_images_1_1_task", tmp_path), "cvat", "detection")
    assert job.result["images_added"] == 2 and job.result["failed"] == 2 and job.result["annotations"] == 0
    assert all("no label" in error["reason"] for error in job.errors), job.errors
    assert splits == {"train": 2}


def test_the_vott_boxes_outside_their_images_are_clipped_or_counted(app_ctx, client, run_jobs, tmp_path):
    dataset, job, _ = run(client, run_jobs, distinct_copy("csv_detection_vott", tmp_path), "csv", "detection")
    assert job.result["annotations"] + job.result["outside_image"] == 5, (job.result, job.errors)
    assert job.result["outside_image"] >= 1


def test_imagenet_subsets_put_each_image_in_its_split(app_ctx, client, run_jobs, tmp_path):
    # Datumaro: 12 items, 4 per subset, 9 labelled; here 2 classes (see imagenet_folders above).
    dataset, job, splits = run(client, run_jobs, distinct_copy("imagenet_folders_subsets", tmp_path), "zip", "classification")
    assert job.result["images_added"] == 12, job.errors
    assert splits == {"train": 4, "validation": 4, "test": 4}
    assert label_counts(dataset.id) == {"label_0": 3, "label_1": 6}


def test_images_with_the_same_bytes_are_kept_once_and_the_others_reported(app_ctx, client, run_jobs):
    # voc_detection's two JPEGs are the same placeholder.
    dataset, job, splits = run(client, run_jobs, FIXTURES / "voc_detection", "voc", "detection")
    assert job.result["images_added"] == 1 and job.result["same_image"] == 1
    assert [e["item"] for e in job.errors if "identical bytes" in e["reason"]] == ["2007_000002.jpg"]
    assert splits == {"train": 1}
