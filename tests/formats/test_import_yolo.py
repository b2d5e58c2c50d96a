"""YOLO import: the three fixture layouts' counts and boxes, our export (boxes and polygons) read
back exactly, and bad files and lines giving NotThisFormat or a problem, never another exception."""

import zipfile
from collections import Counter
from pathlib import Path

import pytest

from formats import yolo
from formats.base import NotThisFormat
from services.shapes import bbox, flatten, outline
from tests.formats.memory_source import MemorySource, box, circle, labels, polygon, run_export, tag
from tests.support import FORMAT_FIXTURES

FIXTURES = FORMAT_FIXTURES


def write(root: Path, files: dict[str, bytes | str]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def per_label(parsed) -> Counter:
    return Counter(a.label for image in parsed.images for a in image.annotations)


def test_label_studio_layout_classes_txt_images_labels_with_crlf():
    parsed = yolo.parse(FIXTURES / "yolo")
    assert [label.name for label in parsed.labels] == ["closed_door", "opened_door", "bus", "number"]
    images = {image.path: image for image in parsed.images}
    assert list(images) == ["img_1.jpg", "img_2.png", "img_3.png", "img_4.png", "img_5.jpg", "img_6.jpeg", "img_7.jpeg"]
    assert [len(image.annotations) for image in images.values()] == [4, 4, 4, 4, 3, 4, 2]
    assert per_label(parsed) == {"closed_door": 10, "opened_door": 1, "bus": 8, "number": 6}
    assert all(a.shape == "box" and a.score is None for image in images.values() for a in image.annotations)
    assert {(image.split, image.units, image.width, tuple(image.problems)) for image in images.values()} == {(None, "fraction", None, ())}
    assert images["img_1.jpg"].file == FIXTURES / "yolo/images/img_1.jpg"
    # labels/img_1.txt, line 1: "2 0.49765625 0.46200607902735563 0.9640625 0.8693009118541033"
    first = images["img_1.jpg"].annotations[0]
    assert first.label == "bus"
    assert first.geometry == pytest.approx({"x": 0.49765625 - 0.9640625 / 2, "y": 0.46200607902735563 - 0.8693009118541033 / 2,
                                            "width": 0.9640625, "height": 0.8693009118541033}, abs=1e-12)
    assert parsed.problems == []


def test_darknet_cvat_layout_obj_data_with_data_prefixed_paths():
    parsed = yolo.parse(FIXTURES / "yolo_darknet_cvat")
    assert [label.name for label in parsed.labels] == [f"label_{i}" for i in range(10)]
    (image,) = parsed.images
    assert (image.path, image.split, image.file) == ("1.jpg", "train", FIXTURES / "yolo_darknet_cvat/obj_train_data/1.jpg")
    assert [a.label for a in image.annotations] == ["label_2", "label_4"]
    # obj_train_data/1.txt, line 1: "2 0.133333 0.300000 0.266667 0.200000"
    assert image.annotations[0].geometry == pytest.approx({"x": 0.133333 - 0.266667 / 2, "y": 0.2, "width": 0.266667, "height": 0.2})
    assert parsed.problems == []


def test_roboflow_layout_falls_back_to_the_folders_when_data_yaml_paths_are_wrong():
    parsed = yolo.parse(FIXTURES / "yolo_ultralytics_roboflow")
    assert [label.name for label in parsed.labels] == ["label_0", "label_1"]
    assert {image.path: (image.split, len(image.annotations)) for image in parsed.images} == {
        "train_001.jpg": ("train", 1), "train_002.jpg": ("train", 1), "val_001.jpg": ("validation", 2)}
    assert per_label(parsed) == {"label_0": 2, "label_1": 2}
    # val/labels/val_001.txt, line 2 (no newline after it): "1 0.45 0.1 0.9 0.2"
    last = next(image for image in parsed.images if image.path == "val_001.jpg").annotations[1]
    assert (last.label, last.geometry) == ("label_1", pytest.approx({"x": 0, "y": 0, "width": 0.9, "height": 0.2}))


def source_for_round_trip() -> MemorySource:
    cat, dog, sky = labels("cat", "dog", "sky")
    source = MemorySource(labels=(cat, dog, sky))
    source.add("a.jpg", box(cat, 0, 0, 16, 12), box(dog, 2.5, 3.125, 4.75, 5.1), tag(sky), split="train")
    source.add("b.png", polygon(dog, (1.5, 2), (30, 2.25), (15, 20)), circle(cat, 20, 10, 4.5),
               size=(40, 24), split="validation", fmt="PNG")
    source.add("c.jpg", box(cat, 0.25, 0.5, 0.5, 0.75), folder="park/north", split="test")
    source.add("d.jpg", box(dog, 1, 1, 2, 2), folder="images", split="unassigned")
    source.add("e.jpg", split="review")
    return source


@pytest.mark.parametrize("options", [{}, {"full_path": True}, {"yolo_shapes": "polygons", "full_path": True}],
                         ids=["boxes", "boxes-full-path", "polygons"])
def test_our_export_reads_back_exactly(tmp_path, options):
    source = source_for_round_trip()
    _, _, path = run_export(yolo, source, tmp_path, **options)
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "out")
    parsed = yolo.parse(tmp_path / "out")
    assert [label.name for label in parsed.labels] == ["cat", "dog", "sky"] and parsed.problems == []
    polygons = options.get("yolo_shapes") == "polygons"
    names = {label.id: label.name for label in source.labels}
    by_path = {image.path: image for image in parsed.images}
    assert len(by_path) == len(source.records)
    for record in source.records:
        image = by_path[record.name(options.get("full_path", False))]
        assert (image.split, image.units, image.problems) == (record.split, "fraction", [])
        assert image.file.read_bytes() == source.blobs[record.storage_key]
        shapes = [a for a in record.annotations if a.shape != "tag"]  # YOLO has no whole-image class
        shape = "polygon" if polygons else "box"
        assert [(a.label, a.shape, a.score) for a in image.annotations] == [(names[a.label_id], shape, None) for a in shapes]
        for annotation, original in zip(image.annotations, shapes):
            if polygons:
                got = [c for x, y in annotation.geometry["points"] for c in (x * record.width, y * record.height)]
                assert got == pytest.approx(flatten(outline(original.shape, original.geometry)), abs=1e-6)
            else:
                g = annotation.geometry
                got = [g["x"] * record.width, g["y"] * record.height, g["width"] * record.width, g["height"] * record.height]
                assert got == pytest.approx(list(bbox(original.shape, original.geometry)), abs=1e-6)


def test_ultralytics_layouts_names_mappings_lists_and_predictions(tmp_path):
    write(tmp_path, {
        "set/data.yaml": "path: .\ntrain: lists/train.txt\nval: [shots/held]\nnc: 2\nnames: {'1': dog, '0': cat}\n",
        "set/lists/train.txt": "./shots/a.jpg\nshots/missing.jpg\n",
        "set/shots/a.jpg": b"jpeg", "set/shots/a.txt": "0 0.5 0.5 0.2 0.4 0.9\n1 0.1 0.1 0.3 0.1 0.2 0.3 0.75\n",
        "set/shots/held/b.jpg": b"jpeg", "set/shots/held/b.txt": "1 0.5 0.5 0.1 0.1",
        "set/shots/c.jpg": b"jpeg",
    })
    parsed = yolo.parse(tmp_path)
    assert [label.name for label in parsed.labels] == ["cat", "dog"]
    images = {image.path: image for image in parsed.images}
    assert {path: image.split for path, image in images.items()} == {
        "shots/a.jpg": "train", "shots/held/b.jpg": "validation", "shots/c.jpg": None}
    scored_box, scored_polygon = images["shots/a.jpg"].annotations
    assert (scored_box.shape, scored_box.score) == ("box", 0.9)
    assert scored_box.geometry == pytest.approx({"x": 0.4, "y": 0.3, "width": 0.2, "height": 0.4})
    assert (scored_polygon.shape, scored_polygon.score) == ("polygon", 0.75)
    assert scored_polygon.geometry == {"points": [[0.1, 0.1], [0.3, 0.1], [0.2, 0.3]]}
    assert images["shots/c.jpg"].annotations == [] and parsed.problems == []


def test_nc_alone_names_the_classes_and_a_mismatch_is_a_problem(tmp_path):
    assert [label.name for label in yolo.parse(write(tmp_path / "a", {"data.yaml": "nc: 2\n"})).labels] == ["class_0", "class_1"]
    parsed = yolo.parse(write(tmp_path / "b", {"data.yml": "nc: 3\nnames: [a, b]\n"}))
    assert [label.name for label in parsed.labels] == ["a", "b"] and parsed.images == []
    assert parsed.problems == [("data.yml", "nc is 3 but names has 2 classes: the names are used")]


def test_darknet_list_files_give_splits_and_stray_labels_are_named(tmp_path):
    write(tmp_path, {
        "obj.data": "classes = 2\ntrain = data/train.txt\nvalid = data/valid.txt\nnames = data/names.list\n",
        "names.list": "cat\r\n\r\ndog\r\n",
        "train.txt": "data/pics/a.jpg\n", "valid.txt": "data/pics/b.jpg\r\n",
        "pics/a.jpg": b"jpeg", "pics/a.txt": "1 0.5 0.5 0.5 0.5", "pics/b.jpg": b"jpeg",
        "obj_train_data/ghost.txt": "0 0.5 0.5 0.5 0.5\n",
    })
    parsed = yolo.parse(tmp_path)
    assert [label.name for label in parsed.labels] == ["cat", "dog"]
    assert {image.path: (image.split, len(image.annotations)) for image in parsed.images} == {
        "pics/a.jpg": ("train", 1), "pics/b.jpg": ("validation", 0)}
    assert parsed.problems == [("obj_train_data/ghost.txt", "a label file with no image of the same name")]


def test_a_dataset_one_folder_down_and_folders_named_after_splits(tmp_path):
    write(tmp_path, {
        "export/classes.txt": "cat\n", "export/images/valid/a.jpg": b"jpeg", "export/labels/valid/a.txt": "0 0.5 0.5 0.5 0.5\n",
        "export/test/images/b.jpg": b"jpeg", "export/test/labels/b.txt": "",
    })
    parsed = yolo.parse(tmp_path)
    assert {image.path: (image.split, len(image.annotations)) for image in parsed.images} == {
        "a.jpg": ("validation", 1), "b.jpg": ("test", 0)}


@pytest.mark.parametrize("files", [
    {},
    {"labels.txt": "0 0.5 0.5 0.1 0.1\n"},  # a lone label file: no class names
    {"images/a.jpg": b"jpeg", "labels/a.txt": "0 0.5 0.5 0.1 0.1\n"},
    {"data.yaml": "train: [unclosed\n"},
    {"data.yaml": "- just\n- a list\n"},
    {"data.yaml": "names: cat\n"},
    {"data.yaml": "names: [cat, [nested]]\n"},
    {"data.yaml": "names: {zero: cat}\n"},
    {"data.yaml": "nc: -1\n"},
    {"data.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nnames: *c\n"},
    {"data.yaml": b"\xff\xfenames: [a]"},
    {"classes.txt": b"\xc3\x28\n"},
    {"obj.data": "classes = 1\nnames = data/missing.names\n"},
], ids=["empty", "lone-label-file", "no-names-file", "bad-yaml", "yaml-list", "names-text", "nested-name", "names-not-numbers",
        "negative-nc", "alias-bomb", "yaml-not-utf8", "classes-not-utf8", "obj-data-without-names"])
def test_an_upload_that_is_not_yolo_is_refused(tmp_path, files):
    write(tmp_path, files)
    with pytest.raises(NotThisFormat, match="Not YOLO"):
        yolo.parse(tmp_path)


def test_paths_outside_the_upload_are_not_followed(tmp_path):
    # A list beside the upload that would name its image: read, it would make the image train.
    (tmp_path / "outside.txt").write_text("up/images/a.jpg\n")
    write(tmp_path / "up", {"data.yaml": "train: ../outside.txt\nval: /etc\ntest: \"bad\\0name\"\nreview: " + "x" * 5000 + "\nnames: [a]\n",
                            "images/a.jpg": b"jpeg"})
    parsed = yolo.parse(tmp_path / "up")
    assert [(image.path, image.split) for image in parsed.images] == [("a.jpg", None)]


BAD_LINES = [
    ("9 0.5 0.5 0.1 0.1", "class 9 is not one of the 2 classes"),
    ("-1 0.5 0.5 0.1 0.1", "is not a class number"),
    ("1.0 0.5 0.5 0.1 0.1", "is not a class number"),
    ("cat 0.5 0.5 0.1 0.1", "is not a class number"),
    ("0 x 0.5 0.1 0.1", "a value is not a number"),
    ("0 nan 0.5 0.1 0.1", "not a finite number"),
    ("0 0.5 0.5 inf 0.1", "not a finite number"),
    ("0 0.5 0.5 1e999 0.1", "not a finite number"),
    ("0", "0 values after the class"),
    ("0 0.5 0.5 0.1", "3 values after the class"),
    ("0 0.5 0.5 0 0.1", "width and height must be greater than 0"),
    ("0 0.5 0.5 0.1 -0.1", "width and height must be greater than 0"),
    ("0 0.5 0.5 0.1 0.1 1.5", "the score 1.5 is not from 0 to 1"),
    ("0 0.1 0.1 0.2 0.2 0.3 0.3 -0.2", "the score -0.2 is not from 0 to 1"),
    ("# a comment", "is not a class number"),
]


@pytest.mark.parametrize("line, problem", BAD_LINES, ids=[line for line, _ in BAD_LINES])
def test_a_bad_line_is_a_problem_of_its_image_and_the_rest_imports(tmp_path, line, problem):
    write(tmp_path, {
        "classes.txt": "cat\ndog\n",
        "images/a.jpg": b"jpeg", "labels/a.txt": f"0 0.5 0.5 0.2 0.2\r\n{line}\r\n1 0.1 0.1 0.3 0.1 0.2 0.3",
        "images/b.jpg": b"jpeg", "labels/b.txt": "1 0.5 0.5 0.2 0.2\n",
    })
    parsed = yolo.parse(tmp_path)
    a, b = parsed.images
    assert [x.shape for x in a.annotations] == ["box", "polygon"] and len(b.annotations) == 1 and b.problems == []
    (found,) = a.problems
    assert found.startswith("labels/a.txt:2: ") and problem in found and found.endswith(f": {line!r}")


def test_a_label_file_that_is_not_text_is_a_problem_of_its_image(tmp_path):
    write(tmp_path, {"classes.txt": "cat\n", "images/a.jpg": b"jpeg", "labels/a.txt": b"\xff\xfe\x00\x01", "images/b.jpg": b"jpeg"})
    a, b = yolo.parse(tmp_path).images
    assert a.annotations == [] and a.problems[0].startswith("labels/a.txt: not UTF-8 text")
    assert (b.annotations, b.problems) == ([], [])
