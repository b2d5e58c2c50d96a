"""YOLO export: the Ultralytics layout, label lines normalized and consistent with data.yaml, counted back."""

import zipfile

import pytest
import yaml

from formats import EXPORTS, yolo
from formats.base import ExportOptions
from services.shapes import CIRCLE_VERTICES
from tests.formats.memory_source import MemorySource, assert_originals, box, circle, labels, polygon, run_export, tag


def label_lines(archive: zipfile.ZipFile, path: str) -> list[list[float]]:
    """A label file's lines as numbers, the class first."""
    return [[float(v) for v in line.split()] for line in archive.read(path).decode().splitlines()]


def data_yaml(archive: zipfile.ZipFile) -> dict:
    return yaml.safe_load(archive.read("data.yaml"))


@pytest.fixture
def detection():
    cat, dog, bird = labels("cat", "dog", "bird")
    source = MemorySource(labels=(cat, dog, bird))
    source.add("a.jpg", box(cat, 8, 6, 32, 12), polygon(dog, (16, 12), (48, 12), (32, 36)), size=(64, 48))
    source.add("b.png", circle(bird, 32, 24, 8), polygon(cat, (1, 1), (9, 9), shape="polyline"), polygon(cat, (4, 4), shape="points"),
               size=(64, 48), fmt="PNG", split="validation")
    source.add("empty.jpg", size=(64, 48), split="test")
    return source


def test_boxes_are_normalized_centre_and_size_lines_with_data_yaml(detection, tmp_path):
    written, counted, path = run_export(yolo, detection, tmp_path)

    assert path.name == "Cats-yolo.zip"
    assert written.images == 3 and written.annotations == 3
    assert dict(written.skipped) == {yolo.SKIP_REASONS["polyline"]: 1, yolo.SKIP_REASONS["points"]: 1}
    assert {split: dict(v) for split, v in counted.per_split.items()} == {
        "train": {"images": 1, "annotations": 2}, "validation": {"images": 1, "annotations": 1}, "test": {"images": 1, "annotations": 0},
    }
    with zipfile.ZipFile(path) as archive:
        assert data_yaml(archive) == {
            "train": "images/train", "val": "images/val", "test": "images/test", "nc": 3, "names": {0: "cat", 1: "dog", 2: "bird"},
        }
        assert label_lines(archive, "labels/train/a.txt") == [
            [0, 24 / 64, 12 / 48, 32 / 64, 12 / 48],
            pytest.approx([1, 32 / 64, 24 / 48, 32 / 64, 24 / 48]),  # the polygon's bounding box
        ]
        assert label_lines(archive, "labels/val/b.txt") == [pytest.approx([2, 0.5, 0.5, 16 / 64, 16 / 48])]
        assert archive.read("labels/test/empty.txt") == b""  # a background image
        folders = {"train": "train", "validation": "val", "test": "test"}
        assert_originals(archive, detection, {i.id: f"images/{folders[i.split]}/{i.file_name}" for i in detection.records})


def test_polygons_mode_writes_boxes_by_corners_and_circles_by_outline(detection, tmp_path):
    written, _, path = run_export(yolo, detection, tmp_path, yolo_shapes="polygons")

    assert written.annotations == 3
    with zipfile.ZipFile(path) as archive:
        corners, triangle = label_lines(archive, "labels/train/a.txt")
        assert corners == [0, 8 / 64, 6 / 48, 40 / 64, 6 / 48, 40 / 64, 18 / 48, 8 / 64, 18 / 48]
        assert triangle == [1, 16 / 64, 12 / 48, 48 / 64, 12 / 48, 32 / 64, 36 / 48]
        outline, = label_lines(archive, "labels/val/b.txt")
        assert outline[0] == 2 and len(outline) == 1 + 2 * CIRCLE_VERTICES
        assert outline[1:3] == pytest.approx([40 / 64, 24 / 48])  # the first vertex, at angle 0


def test_shapes_over_the_edge_are_clipped_into_the_image(tmp_path):
    spot, = labels("spot")
    source = MemorySource(labels=(spot,), dataset_type="segmentation")
    source.add("edge.jpg", circle(spot, 2, 6, 5), box(spot, -0.4, -0.3, 16.4, 12.3))
    for shapes in ("boxes", "polygons"):
        _, _, path = run_export(yolo, source, tmp_path, yolo_shapes=shapes)
        with zipfile.ZipFile(path) as archive:
            lines = label_lines(archive, "labels/train/edge.txt")
        assert len(lines) == 2 and all(0 <= v <= 1 for line in lines for v in line[1:])
        if shapes == "boxes":
            assert lines == [pytest.approx([0, 3.5 / 16, 0.5, 7 / 16, 10 / 12]), [0, 0.5, 0.5, 1.0, 1.0]]


def test_unassigned_images_train_and_review_images_are_held_out(tmp_path):
    cell, = labels("cell")
    source = MemorySource(labels=(cell,), dataset_type="segmentation", version_name="V003")
    source.add("t.jpg", box(cell, 1, 1, 4, 4), split="train")
    source.add("u.jpg", box(cell, 2, 2, 4, 4), split="unassigned")
    source.add("r.jpg", box(cell, 3, 3, 4, 4), split="review")
    written, counted, path = run_export(yolo, source, tmp_path)

    assert path.name == "Cats-V003-yolo.zip"
    assert set(counted.per_split) == {"train", "unassigned", "review"}
    with zipfile.ZipFile(path) as archive:
        # No validation images: Ultralytics still needs `val`, so it validates on the training folders.
        assert data_yaml(archive) == {
            "train": ["images/train", "images/unassigned"], "val": ["images/train", "images/unassigned"],
            "review": "images/review", "nc": 1, "names": {0: "cell"},
        }
        text = archive.read("data.yaml").decode()
        assert "No `path`" in text and "&" not in text  # no YAML aliases for a person to puzzle over
        assert archive.read("labels/unassigned/u.txt") and archive.read("labels/review/r.txt")


def test_without_training_images_the_train_folder_is_there_and_empty(tmp_path):
    cell, = labels("cell")
    source = MemorySource(labels=(cell,))
    source.add("v.jpg", box(cell, 1, 1, 4, 4), split="validation")
    _, _, path = run_export(yolo, source, tmp_path)
    with zipfile.ZipFile(path) as archive:
        assert data_yaml(archive)["train"] == "images/train"
        assert archive.getinfo("images/train/").is_dir()


def test_repeated_stems_get_unique_names_and_full_paths_keep_folders(tmp_path):
    cat, = labels("cat")
    source = MemorySource(labels=(cat,))
    source.add("a.jpg", box(cat, 1, 1, 4, 4), folder="x")
    source.add("a.png", box(cat, 2, 2, 4, 4), folder="x", fmt="PNG")  # same label file a.txt
    source.add("A.jpg", folder="y")
    source.add("a.jpg", box(cat, 3, 3, 4, 4), folder="images/deep")

    written, _, path = run_export(yolo, source, tmp_path)
    assert written.renamed == 3
    with zipfile.ZipFile(path) as archive:
        names = ["a.jpg", "a~101.png", "A~102.jpg", "a~103.jpg"]
        assert_originals(archive, source, {image.id: f"images/train/{name}" for image, name in zip(source.records, names)})
        assert [len(label_lines(archive, f"labels/train/{name.rsplit('.', 1)[0]}.txt")) for name in names] == [1, 1, 0, 1]

    written, _, path = run_export(yolo, source, tmp_path, full_path=True)
    assert written.renamed == 1
    with zipfile.ZipFile(path) as archive:
        names = ["x/a.jpg", "x/a~101.png", "y/A.jpg", "images/deep/a.jpg"]
        assert_originals(archive, source, {image.id: f"images/train/{name}" for image, name in zip(source.records, names)})
        # Ultralytics swaps the last /images/ of a path for /labels/: that is where this one's labels are.
        assert yolo.label_path("images/train/images/deep/a.jpg") == "images/train/labels/deep/a.txt"
        assert len(label_lines(archive, "images/train/labels/deep/a.txt")) == 1
        assert "labels/train/y/A.txt" in archive.namelist()


def test_whole_image_tags_are_skipped_with_a_reason(tmp_path):
    ok, defect = labels("ok", "defect")
    source = MemorySource(labels=(ok, defect), dataset_type="classification")
    source.add("1.jpg", tag(ok))
    source.add("2.jpg", tag(defect), box(defect, 2, 2, 5, 5))
    written, counted, _ = run_export(yolo, source, tmp_path)
    assert written.skipped == {yolo.SKIP_REASONS["tag"]: 2}
    assert counted.images == 2 and dict(counted.per_label) == {"defect": 1}


@pytest.mark.parametrize("line, problem", [
    ("1 0.5 0.5 0.1 0.1", "not one of data.yaml's 1 names"),
    ("0 0.5 1.5 0.1 0.1", "outside 0-1"),
    ("0 0.5 0.5 0.1", "not a box"),
])
def test_count_refuses_a_label_line_that_breaks_the_layout(tmp_path, line, problem):
    cat, = labels("cat")
    source = MemorySource(labels=(cat,))
    source.add("a.jpg", box(cat, 1, 1, 4, 4))
    _, _, path = run_export(yolo, source, tmp_path)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(broken, "w") as copy:
        for info in archive.infolist():
            copy.writestr(info, line + "\n" if info.filename == "labels/train/a.txt" else archive.read(info))
    with pytest.raises(ValueError, match=problem):
        yolo.count(broken, ExportOptions(format="yolo"))


def test_yolo_is_registered():
    assert EXPORTS["yolo"] is yolo


def test_live_dataset_exports_through_the_real_source(app_ctx, tmp_path):
    from services.export_source import LiveSource
    from tests.formats.memory_source import annotated_dataset

    dataset, originals = annotated_dataset()
    written, counted, path = run_export(yolo, LiveSource(dataset), tmp_path, yolo_shapes="polygons", full_path=True)

    assert written.images == 3 and dict(counted.per_label) == {"cat": 1, "dog": 2}
    assert dict(written.skipped) == {yolo.SKIP_REASONS["polyline"]: 1}
    with zipfile.ZipFile(path) as archive:
        assert data_yaml(archive) == {"train": "images/train", "val": "images/val", "nc": 2, "names": {0: "cat", 1: "dog"}}
        first, second, empty = sorted(originals)
        paths = {first: "images/train/a.jpg", second: "images/val/park/a.jpg", empty: "images/val/park/empty.jpg"}
        assert sorted(n for n in archive.namelist() if n.startswith("images/")) == sorted(paths.values())
        for image_id, path in paths.items():
            assert archive.read(path) == originals[image_id]
        assert [len(line) for line in label_lines(archive, "labels/val/park/a.txt")] == [1 + 2 * CIRCLE_VERTICES]
        assert archive.read("labels/val/park/empty.txt") == b""
