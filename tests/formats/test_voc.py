"""Pascal VOC export: XML parsed and boxes checked in VOC's 1-based numbering, ImageSets against the
splits, classification lists, palette masks against the shapes, and count() reading it back."""

import io
import zipfile
from xml.etree import ElementTree

import pytest
from PIL import Image as PILImage

from formats import EXPORTS, voc
from formats.base import ExportOptions
from services.export_source import LiveSource
from services.shapes import area
from tests.formats.memory_source import MemorySource, annotated_dataset, assert_originals, box, circle, labels, polygon, run_export, tag


def read(path, name) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def names(path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        return set(archive.namelist())


def lines(path, name) -> list[str]:
    return read(path, name).decode().splitlines()


def objects(path, image_id) -> list[tuple]:
    root = ElementTree.fromstring(read(path, f"Annotations/{image_id}.xml"))
    return [
        (element.findtext("name"), *(float(element.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")))
        for element in root.iter("object")
    ]


@pytest.fixture
def detection():
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog), dataset_type="detection")
    source.add("a.jpg", box(cat, 0, 0, 16, 12), box(dog, 2.5, 3, 4, 5.25), split="train")
    source.add("b.png", circle(dog, 12, 6, 3), polygon(cat, (1, 2), (9, 2), (5, 10)), polygon(cat, (1, 1), (3, 3), shape="polyline"),
               split="validation", fmt="PNG")
    source.add("c.jpg", split="test")
    source.add("d.jpg", split="unassigned")
    return source


def test_registered():
    assert EXPORTS["voc"] is voc


def test_xml_per_image_with_boxes_in_voc_pixel_numbering(detection, tmp_path):
    written, counted, path = run_export(voc, detection, tmp_path)
    root = ElementTree.fromstring(read(path, "Annotations/a.xml"))
    assert root.tag == "annotation" and root.findtext("folder") == "JPEGImages" and root.findtext("filename") == "a.jpg"
    assert [root.findtext(f"size/{k}") for k in ("width", "height", "depth")] == ["16", "12", "3"]
    assert root.findtext("segmented") == "0" and root.findtext("source/database") == "Cats"
    first = root.find("object")
    assert [first.findtext(k) for k in ("name", "pose", "truncated", "difficult")] == ["cat", "Unspecified", "0", "0"]
    # The whole image is pixels 1..16 by 1..12; a fractional box keeps its fraction.
    assert objects(path, "a") == [("cat", 1, 1, 16, 12), ("dog", 3.5, 4, 6.5, 8.25)]
    assert first.findtext("bndbox/xmax") == "16"
    # A circle and a polygon by their bounding boxes; the polyline has no VOC form.
    assert objects(path, "b") == [("dog", 10, 4, 15, 9), ("cat", 2, 3, 9, 10)]
    assert written.skipped == {"polyline: Pascal VOC has no open lines": 1}
    assert counted.per_label == {"cat": 2, "dog": 2}
    with zipfile.ZipFile(path) as archive:
        assert_originals(archive, detection, {100: "JPEGImages/a.jpg", 101: "JPEGImages/b.png", 102: "JPEGImages/c.jpg", 103: "JPEGImages/d.jpg"})


def test_boxes_read_back_exactly(tmp_path):
    cat, = labels("cat")
    source = MemorySource(labels=(cat,))
    geometries = [(0.1, 0.2, 3.3, 4.7), (1 / 3, 2 / 7, 5.5, 0.25), (15, 11, 1, 1)]
    source.add("a.jpg", *(box(cat, *g) for g in geometries))
    _, _, path = run_export(voc, source, tmp_path)
    for (name, xmin, ymin, xmax, ymax), (x, y, w, h) in zip(objects(path, "a"), geometries):
        assert (xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1) == pytest.approx((x, y, w, h), abs=1e-9)


def test_image_sets_list_the_splits(detection, tmp_path):
    _, counted, path = run_export(voc, detection, tmp_path)
    assert lines(path, "ImageSets/Main/train.txt") == ["a"]
    assert lines(path, "ImageSets/Main/val.txt") == ["b"]
    assert lines(path, "ImageSets/Main/trainval.txt") == ["a", "b"]
    assert lines(path, "ImageSets/Main/test.txt") == ["c"]
    assert lines(path, "ImageSets/Main/unassigned.txt") == ["d"]
    assert "ImageSets/Main/review.txt" not in names(path)
    assert not any(name.startswith(("ImageSets/Segmentation", "Segmentation")) for name in names(path))
    assert counted.as_dict()["per_split"] == {
        "train": {"images": 1, "annotations": 2}, "validation": {"images": 1, "annotations": 2},
        "test": {"images": 1, "annotations": 0}, "unassigned": {"images": 1, "annotations": 0},
    }


def test_masks_are_voc_palette_pngs_matching_the_shapes(detection, tmp_path):
    _, _, path = run_export(voc, detection, tmp_path, masks=True)
    assert ElementTree.fromstring(read(path, "Annotations/b.xml")).findtext("segmented") == "1"
    assert ElementTree.fromstring(read(path, "Annotations/c.xml")).findtext("segmented") == "0"
    classes = PILImage.open(io.BytesIO(read(path, "SegmentationClass/b.png")))
    instances = PILImage.open(io.BytesIO(read(path, "SegmentationObject/b.png")))
    assert classes.mode == instances.mode == "P" and classes.size == (16, 12)
    assert classes.getpalette()[3:6] == [128, 0, 0]
    pixels = list(instances.get_flattened_data())
    shapes = detection.records[1].annotations
    for value, shape in ((1, shapes[0]), (2, shapes[1])):
        expected = area(shape.shape, shape.geometry)
        assert abs(pixels.count(value) - expected) <= 0.2 * expected, (value, pixels.count(value), expected)
    assert classes.getpixel((12, 6)) == 2 and classes.getpixel((5, 4)) == 1 and classes.getpixel((0, 11)) == 0
    assert lines(path, "ImageSets/Segmentation/train.txt") == ["a"]
    assert lines(path, "ImageSets/Segmentation/trainval.txt") == ["a", "b"]
    assert "SegmentationClass/c.png" not in names(path)
    assert lines(path, "labelmap.txt") == ["# label:color_rgb:parts:actions", "background:0,0,0::", "cat:128,0,0::", "dog:0,128,0::"]


def test_count_leaves_out_objects_whose_masks_are_missing(detection, tmp_path):
    written, _, path = run_export(voc, detection, tmp_path, masks=True)
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(path) as original, zipfile.ZipFile(damaged, "w") as copy:
        for info in original.infolist():
            if info.filename not in ("SegmentationObject/b.png", "JPEGImages/c.jpg"):
                copy.writestr(info, original.read(info))
    counted = voc.count(damaged, ExportOptions(format="voc", masks=True))
    assert counted.skipped == {"objects of an image whose masks are missing": 2}
    assert counted.images == 3 and counted.annotations == 2


def test_classes_become_voc_classification_lists(tmp_path):
    cat, dog = labels("cat", "a/dog")
    source = MemorySource(labels=(cat, dog), dataset_type="multilabel")
    source.add("a.jpg", tag(cat), tag(dog), split="train")
    source.add("b.jpg", tag(dog), polygon(cat, (1, 1), (9, 1), (5, 8)), split="train")
    source.add("c.jpg", split="test")
    _, counted, path = run_export(voc, source, tmp_path)
    assert lines(path, "ImageSets/Main/cat_train.txt") == ["a  1", "b -1"]
    assert lines(path, "ImageSets/Main/a%2Fdog_train.txt") == ["a  1", "b  1"]
    assert lines(path, "ImageSets/Main/cat_test.txt") == ["c -1"]
    assert objects(path, "b") == [("cat", 2, 2, 9, 8)]
    assert counted.per_label == {"cat": 2, "a/dog": 2}


def test_names_repeated_or_in_folders_give_distinct_ids(tmp_path):
    cat, = labels("cat")
    source = MemorySource(labels=(cat,), dataset_type="detection")
    source.add("a.jpg", box(cat, 1, 1, 2, 2), folder="x")
    source.add("a.png", box(cat, 1, 1, 2, 2), folder="y", fmt="PNG")
    source.add("IMG 1.jpg", box(cat, 1, 1, 2, 2), folder="y")
    _, _, path = run_export(voc, source, tmp_path)
    assert lines(path, "ImageSets/Main/train.txt") == ["a", "a~101", "IMG 1"]
    assert ElementTree.fromstring(read(path, "Annotations/a~101.xml")).findtext("filename") == "a~101.png"
    (tmp_path / "full").mkdir()
    _, _, path = run_export(voc, source, tmp_path / "full", full_path=True)
    assert lines(path, "ImageSets/Main/train.txt") == ["x/a", "y/a", "y/IMG 1"]
    assert ElementTree.fromstring(read(path, "Annotations/y/a.xml")).findtext("filename") == "y/a.png"
    assert {"JPEGImages/x/a.jpg", "JPEGImages/y/a.png"} <= names(path)


def test_label_names_are_escaped_in_the_xml(tmp_path):
    odd, = labels('<cat & "dog">\x01')
    source = MemorySource(labels=(odd,), dataset_type="detection", dataset_name="A & B")
    source.add("a.jpg", box(odd, 1, 1, 2, 2))
    with open(tmp_path / "out.zip", "wb") as out:
        voc.export(source, ExportOptions(format="voc"), out, lambda done: None)
    xml = read(tmp_path / "out.zip", "Annotations/a.xml")
    assert b"&lt;cat &amp; \"dog\"&gt;" in xml
    assert objects(tmp_path / "out.zip", "a") == [('<cat & "dog">\ufffd', 2, 2, 3, 3)]


def test_a_live_dataset_exports_its_stored_images_and_annotations(app_ctx, tmp_path):
    dataset, originals = annotated_dataset()
    source = LiveSource(dataset)
    written, counted, path = run_export(voc, source, tmp_path, full_path=True, masks=True)
    assert counted.images == source.count() == 3 and counted.per_label == {"cat": 1, "dog": 2}
    assert lines(path, "ImageSets/Main/train.txt") == ["a"]
    assert lines(path, "ImageSets/Main/val.txt") == ["park/a", "park/empty"]
    assert objects(path, "park/a") == [("dog", 19, 13, 42, 36)]
    with zipfile.ZipFile(path) as archive:
        ids = {image.id: image.path for image in source.images()}
        for image_id, data in originals.items():
            assert archive.read(f"JPEGImages/{ids[image_id]}") == data
    assert PILImage.open(io.BytesIO(read(path, "SegmentationObject/park/a.png"))).getpixel((30, 24)) == 1
