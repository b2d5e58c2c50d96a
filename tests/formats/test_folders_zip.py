"""ZIP in label folders: the layout of every dataset type, masks against the shapes, names made safe
and unique, the original bytes, and count() reading the archive back to export()'s tally."""

import csv
import io
import json
import zipfile
from urllib.parse import unquote

import pytest
from PIL import Image as PILImage

from formats import folders_zip, EXPORTS
from formats.base import ExportLabel, ExportOptions
from services.export_source import LiveSource
from services.shapes import area
from tests.formats.memory_source import MemorySource, annotated_dataset, assert_originals, box, circle, labels, polygon, run_export, tag


def files(path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return sorted(archive.namelist())


def listed(path) -> list[dict]:
    with zipfile.ZipFile(path) as archive:
        return list(csv.DictReader(io.StringIO(archive.read("annotations.csv").decode())))


def mask(path, name) -> PILImage.Image:
    with zipfile.ZipFile(path) as archive:
        return PILImage.open(io.BytesIO(archive.read(name)))


def test_registered():
    assert EXPORTS["zip"] is folders_zip


def test_classification_images_sit_in_their_class_folder_and_the_rest_in_unclassified(tmp_path):
    cat, dog = labels("cat", "dog")
    unsure = ExportLabel(id=30, name="not sure", color="#000000", position=2, unclassified=True)
    source = MemorySource(labels=(cat, dog, unsure), dataset_type="classification")
    source.add("a.jpg", tag(cat), split="train")
    source.add("b.jpg", tag(dog), split="validation", folder="line-3/2024")
    source.add("c.jpg", split="test")
    source.add("d.jpg", tag(unsure), split="train")
    written, counted, path = run_export(folders_zip, source, tmp_path)

    assert files(path) == ["Unclassified/c.jpg", "Unclassified/d.jpg", "annotations.csv", "cat/a.jpg", "classes.csv", "dog/b.jpg"]
    with zipfile.ZipFile(path) as archive:
        assert_originals(archive, source, {100: "cat/a.jpg", 101: "dog/b.jpg", 102: "Unclassified/c.jpg", 103: "Unclassified/d.jpg"})
        assert json.loads(archive.comment) == {"dataset_type": "classification"}
    assert [(r["image"], r["split"], r["label"], r["shape"]) for r in listed(path)] == [
        ("cat/a.jpg", "train", "cat", "tag"), ("dog/b.jpg", "validation", "dog", "tag"),
        ("Unclassified/c.jpg", "test", "", ""), ("Unclassified/d.jpg", "train", "not sure", "tag"),
    ]
    assert counted.as_dict()["per_label"] == {"cat": 1, "dog": 1, "not sure": 1}
    assert counted.as_dict()["per_split"] == {
        "train": {"images": 2, "annotations": 2}, "validation": {"images": 1, "annotations": 1}, "test": {"images": 1, "annotations": 0},
    }


def test_full_path_keeps_the_dataset_folders_inside_the_label_folder(tmp_path):
    cat, = labels("cat")
    source = MemorySource(labels=(cat,), dataset_type="classification")
    source.add("a.jpg", tag(cat), folder="line-3/2024")
    source.add("a.jpg", tag(cat), folder="line-4")
    source.add("b.jpg", folder="Masks")  # a dataset folder may not pass for the masks' folder
    _, _, path = run_export(folders_zip, source, tmp_path, full_path=True)
    assert files(path) == ["Unclassified/%4Dasks/b.jpg", "annotations.csv", "cat/line-3/2024/a.jpg", "cat/line-4/a.jpg", "classes.csv"]


def test_anomaly_classes_are_folders_and_defect_regions_masks_beside_their_images(tmp_path):
    normal, defect, scratch = labels("normal", "defect", "scratch")
    source = MemorySource(labels=(normal, defect, scratch), dataset_type="anomaly")
    source.add("ok.png", tag(normal), fmt="PNG")
    source.add("bad.jpg", tag(defect), box(scratch, 2, 2, 6, 4), polygon(defect, (9, 1), (15, 1), (12, 9)), split="test")
    source.add("unsure.jpg", circle(scratch, 8, 6, 3))
    written, counted, path = run_export(folders_zip, source, tmp_path)

    assert files(path) == [
        "Unclassified/Masks/Objects/unsure.png", "Unclassified/Masks/unsure.png", "Unclassified/unsure.jpg", "annotations.csv", "classes.csv",
        "defect/Masks/Objects/bad.png", "defect/Masks/bad.png", "defect/bad.jpg", "normal/ok.png",
    ]
    classes = mask(path, "defect/Masks/bad.png")
    assert classes.mode == "L" and classes.size == (16, 12)
    assert classes.getpixel((4, 3)) == 3 and classes.getpixel((12, 3)) == 2 and classes.getpixel((1, 10)) == 0
    objects = mask(path, "defect/Masks/Objects/bad.png")
    assert list(objects.get_flattened_data()).count(1) == 24 and objects.getpixel((12, 3)) == 2
    assert written.as_dict()["per_label"] == {"normal": 1, "defect": 2, "scratch": 2}
    with zipfile.ZipFile(path) as archive:
        assert archive.read("classes.csv").decode().splitlines() == ["index,label,color", "1,normal,#3cb44b", "2,defect,#3cb44b", "3,scratch,#3cb44b"]


def test_multilabel_images_sit_at_the_root_with_their_masks_and_their_classes_listed(tmp_path):
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog), dataset_type="multilabel")
    source.add("a.jpg", tag(cat), tag(dog))
    source.add("b.jpg", tag(dog), polygon(cat, (1, 1), (14, 2), (8, 11)), split="validation")
    source.add("b.png", fmt="PNG")  # the same stem: its masks would take b.jpg's names
    _, counted, path = run_export(folders_zip, source, tmp_path)

    assert files(path) == ["Masks/Objects/b.png", "Masks/b.png", "a.jpg", "annotations.csv", "b.jpg", "b~102.png", "classes.csv"]
    assert [(r["image"], r["label"], r["shape"]) for r in listed(path)] == [
        ("a.jpg", "cat", "tag"), ("a.jpg", "dog", "tag"), ("b.jpg", "dog", "tag"), ("b.jpg", "cat", "polygon"), ("b~102.png", "", ""),
    ]
    pixels = list(mask(path, "Masks/b.png").get_flattened_data())
    expected = area("polygon", {"points": [[1, 1], [14, 2], [8, 11]]})
    assert abs(pixels.count(1) - expected) <= 0.15 * expected and pixels.count(2) == 0
    assert counted.per_label == {"cat": 2, "dog": 2}


def test_segmentation_rows_carry_the_geometry_in_percent(tmp_path):
    cat, = labels("cat")
    source = MemorySource(labels=(cat,), dataset_type="segmentation")
    source.add("a.jpg", polygon(cat, (4, 3), (12, 3), (8, 9)), box(cat, 0, 0, 8, 6), circle(cat, 8, 6, 2))
    _, _, path = run_export(folders_zip, source, tmp_path, coordinates="percent")
    rows = listed(path)
    assert [r["shape"] for r in rows] == ["polygon", "box", "circle"]
    assert json.loads(rows[0]["points"]) == [[25.0, 25.0], [75.0, 25.0], [50.0, 75.0]]
    assert [float(rows[1][k]) for k in ("x_min", "y_min", "x_max", "y_max")] == [0, 0, 50, 50]
    assert [float(rows[2][k]) for k in ("x_min", "y_min", "x_max", "y_max")] == [37.5, pytest.approx(100 / 3), 62.5, pytest.approx(200 / 3)]
    assert "Masks/a.png" in files(path)


def test_detection_lists_every_shape_and_writes_no_masks(tmp_path):
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog), dataset_type="detection")
    source.add("a.jpg", box(cat, 1.25, 2, 3, 4), polygon(dog, (1, 1), (9, 9), shape="polyline"), polygon(dog, (4, 4), shape="points"))
    source.add("b.jpg", circle(dog, 8, 6, 2), split="test", folder="x")
    _, counted, path = run_export(folders_zip, source, tmp_path)
    assert files(path) == ["a.jpg", "annotations.csv", "b.jpg", "classes.csv"]
    rows = listed(path)
    assert [(r["image"], r["label"], r["shape"], r["x_min"], r["y_min"], r["x_max"], r["y_max"]) for r in rows] == [
        ("a.jpg", "cat", "box", "1.25", "2", "4.25", "6"), ("a.jpg", "dog", "polyline", "1", "1", "9", "9"),
        ("a.jpg", "dog", "points", "4", "4", "4", "4"), ("b.jpg", "dog", "circle", "6", "4", "10", "8"),
    ]
    assert json.loads(rows[1]["points"]) == [[1, 1], [9, 9]]
    assert counted.as_dict()["per_split"] == {"train": {"images": 1, "annotations": 3}, "test": {"images": 1, "annotations": 1}}


def test_unsafe_and_reserved_label_names_become_distinct_safe_folders_that_read_back(tmp_path):
    names = ("a/b", "a%2Fb", "..", ".", "CON", "con.txt", "Unclassified", "masks", "tab\there", "trail. ", 'q?"*<>|:', "back\\slash", "100%")
    made = labels(*names)
    source = MemorySource(labels=made, dataset_type="classification")
    for i, label in enumerate(made):
        source.add(f"{i}.jpg", tag(label))
    _, counted, path = run_export(folders_zip, source, tmp_path)

    folders = [name.split("/")[0] for name in files(path) if "/" in name]
    assert len(set(f.lower() for f in folders)) == len(names)
    for folder in folders:
        assert folder not in (".", "..") and not folder.endswith((".", " "))
        assert not any(c in folder for c in '\\<>:"|?*\t') and folder.lower() not in ("con", "masks", "unclassified")
    assert sorted(unquote(f) for f in folders) == sorted(names)
    assert folders_zip.safe_segment("100%") == "100%" and folders_zip.safe_segment("a/b") == "a%2Fb"
    assert counted.per_label == {name: 1 for name in names}


def test_unsafe_file_names_are_escaped_and_repeated_ones_made_unique(tmp_path):
    cat, = labels("cat")
    source = MemorySource(labels=(cat,), dataset_type="classification")
    for folder in ("", "x", "y"):
        source.add("a.jpg", tag(cat), folder=folder)
    source.add("A.JPG", tag(cat))
    source.add("..", tag(cat))
    _, counted, path = run_export(folders_zip, source, tmp_path)
    assert files(path) == ["annotations.csv", "cat/%2E%2E", "cat/A~103.JPG", "cat/a.jpg", "cat/a~101.jpg", "cat/a~102.jpg", "classes.csv"]
    with zipfile.ZipFile(path) as archive:
        assert_originals(archive, source, {100: "cat/a.jpg", 101: "cat/a~101.jpg", 102: "cat/a~102.jpg", 103: "cat/A~103.JPG", 104: "cat/%2E%2E"})
    assert counted.images == 5


def test_count_misses_what_the_archive_lost(tmp_path):
    cat, = labels("cat")
    source = MemorySource(labels=(cat,), dataset_type="segmentation")
    source.add("a.jpg", box(cat, 0, 0, 4, 4))
    source.add("b.jpg", split="test")
    written, _, path = run_export(folders_zip, source, tmp_path)
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(path) as original, zipfile.ZipFile(damaged, "w") as copy:
        copy.comment = original.comment
        for info in original.infolist():
            if info.filename == "annotations.csv":
                copy.writestr(info, b"".join(original.read(info).splitlines(keepends=True)[:-1]))  # b.jpg's row
            elif info.filename != "Masks/Objects/a.png":
                copy.writestr(info, original.read(info))
    counted = folders_zip.count(damaged, ExportOptions(format="zip"))
    assert counted.skipped == {"a region whose mask is missing": 1}
    assert written.differences(counted) == [
        "annotations: 1 written, 0 in the file",
        "label 'cat': 1 annotations written, 0 in the file",
        "split train: {'images': 1, 'annotations': 1} written, {'images': 1, 'annotations': 0} in the file",
        "split test: {'images': 1, 'annotations': 0} written, nothing in the file",
        "split (not in annotations.csv): nothing written, {'images': 1, 'annotations': 0} in the file",
    ]


def test_a_live_dataset_exports_its_stored_images_and_annotations(app_ctx, tmp_path):
    dataset, originals = annotated_dataset()
    source = LiveSource(dataset)
    written, counted, path = run_export(folders_zip, source, tmp_path, full_path=True)
    assert counted.images == source.count() == 3 and counted.per_label == {"cat": 2, "dog": 2}
    assert files(path) == ["a.jpg", "annotations.csv", "classes.csv", "park/a.jpg", "park/empty.jpg"]
    assert [(r["image"], r["split"], r["label"], r["shape"]) for r in listed(path)] == [
        ("a.jpg", "train", "cat", "box"), ("a.jpg", "train", "dog", "polygon"),
        ("park/a.jpg", "validation", "dog", "circle"), ("park/a.jpg", "validation", "cat", "polyline"), ("park/empty.jpg", "validation", "", ""),
    ]
    with zipfile.ZipFile(path) as archive:
        paths = {image.id: image.path for image in source.images()}
        for image_id, data in originals.items():
            assert archive.read(paths[image_id]) == data
