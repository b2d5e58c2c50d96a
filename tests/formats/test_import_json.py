"""Loupe JSON import: our export back as it went in, in pixels and in percent, the images beside it
found, and broken documents refused or reported, never an exception."""

import json
import shutil

import pytest

from formats import loupe_json
from formats.base import ExportAnnotation, ExportLabel, NotThisFormat
from tests.formats.memory_source import MemorySource, export_and_parse, box, circle, polygon, run_export, tag
from tests.formats.test_import_csv import assert_close

ATTRIBUTES = (
    {"name": "pose", "type": "select", "values": ["left", "right"], "default": "left"},
    {"name": "occluded", "type": "checkbox"},
)


@pytest.fixture
def annotated():
    cat = ExportLabel(id=10, name="cat", color="#e6194b", attributes=ATTRIBUTES)
    dog = ExportLabel(id=11, name="dög", color="#3cb44b", position=1)
    unsure = ExportLabel(id=12, name="not sure", color="#000000", position=2, unclassified=True)
    unused = ExportLabel(id=13, name="unused", color="#ffffff", position=3)
    source = MemorySource(labels=(cat, dog, unsure, unused), dataset_type="detection")
    source.add("a.jpg", box(cat, 1.25, 2, 10, 7.5, attributes={"pose": "right", "occluded": True}, text="ocr\nline"),
               polygon(dog, (1, 1), (15, 1.5), (8, 11)), split="train", folder="line-3/2024", tags=("night",))
    source.add("a.jpg", circle(dog, 8, 6, 3.5), polygon(cat, (0, 0), (16, 12), shape="polyline"),
               polygon(cat, (2, 2), shape="points"), split="validation", size=(20, 10))
    source.add("臉書.png", ExportAnnotation(dog.id, "box", {"x": 0, "y": 0, "width": 4, "height": 4}, source="prediction", score=0.875),
               tag(unsure), split="test", folder="park", fmt="PNG")
    source.add("empty.jpg", split="unassigned")
    return source


def fraction(annotation, image) -> dict:
    """Pixel geometry as fractions of the image, as the import's job reads them back: x by the
    width, y by the height, a circle's radius by the width."""
    sx, sy = 1 / image.width, 1 / image.height
    g = annotation.geometry
    if annotation.shape == "box":
        return {"x": g["x"] * sx, "y": g["y"] * sy, "width": g["width"] * sx, "height": g["height"] * sy}
    if annotation.shape == "circle":
        return {"cx": g["cx"] * sx, "cy": g["cy"] * sy, "r": g["r"] * sx}
    if annotation.shape == "tag":
        return {}
    return {"points": [[x * sx, y * sy] for x, y in g["points"]]}


@pytest.mark.parametrize("coordinates, units", [("pixel", "pixel"), ("percent", "fraction")])
def test_our_export_comes_back_as_it_went_in(annotated, tmp_path, coordinates, units):
    parsed = export_and_parse(loupe_json, annotated, tmp_path, coordinates=coordinates, full_path=True)
    assert parsed.problems == []
    assert [(label.name, label.color, label.attributes) for label in parsed.labels] == [
        ("cat", "#e6194b", ATTRIBUTES), ("dög", "#3cb44b", ()), ("not sure", "#000000", ()), ("unused", "#ffffff", ()),
    ]
    names = {label.id: label.name for label in annotated.labels}
    assert [image.path for image in parsed.images] == ["line-3/2024/a.jpg", "a.jpg", "park/臉書.png", "empty.jpg"]
    for record, image in zip(annotated.records, parsed.images, strict=True):
        assert (image.split, image.width, image.height, image.units, image.problems) == (record.split, record.width, record.height, units, [])
        for want, got in zip(record.annotations, image.annotations, strict=True):
            assert (got.label, got.shape, got.attributes, got.text) == (names[want.label_id], want.shape, want.attributes, want.text)
            assert got.score == (want.score if want.source == "prediction" else None)
            assert_close(got.geometry, want.geometry if units == "pixel" else fraction(want, record))

def test_bare_names_find_the_images_beside_the_json(annotated, tmp_path):
    _, _, path = run_export(loupe_json, annotated, tmp_path)
    upload = tmp_path / "upload"
    (upload / "pics").mkdir(parents=True)
    shutil.copy(path, upload)
    (upload / "pics/empty.jpg").write_bytes(b"x")
    images = {image.path: image for image in loupe_json.parse(upload).images}
    assert images["empty.jpg"].file == upload / "pics/empty.jpg"
    assert images["臉書.png"].file is None  # not in the upload
    assert images["a.jpg"].file is None  # not in the upload either; two images have this name anyway


def head(**changes) -> dict:
    return {"loupe_export": 1, "dataset": {"name": "x"}, "coordinates": "pixel", "labels": [], "images": []} | changes


NOT_LOUPE = {
    "no json": None,
    "not JSON": b"{\"loupe_export\": 1,",
    "not UTF-8": b"\xff\xfe\xfa",
    "nested too deep": b"[" * 100_000 + b"]" * 100_000,
    "too many digits": b'{"loupe_export": ' + b"1" * 5000 + b"}",
    "a list": b"[1, 2]",
    "another JSON": json.dumps({"images": [], "annotations": []}).encode(),
    "a later version": json.dumps(head(loupe_export=2)).encode(),
    "unknown coordinates": json.dumps(head(coordinates="normalized")).encode(),
    "images not a list": json.dumps(head(images={"a": 1})).encode(),
    "labels not a list": json.dumps(head(labels="cat")).encode(),
    "a partial export": json.dumps(head(images=[{"file_name": "a.jpg"}])).encode()[:-5],
}


@pytest.mark.parametrize("data", NOT_LOUPE.values(), ids=NOT_LOUPE.keys())
def test_a_document_that_is_no_loupe_export_is_not_this_format(tmp_path, data):
    if data is not None:
        (tmp_path / "export.json").write_bytes(data)
    with pytest.raises(NotThisFormat):
        loupe_json.parse(tmp_path)


def image(**changes) -> dict:
    return {"file_name": "a.jpg", "width": 16, "height": 12, "split": "train", "annotations": []} | changes


def annotation(**changes) -> dict:
    return {"label": "cat", "shape": "box", "geometry": {"x": 1, "y": 1, "width": 2, "height": 2}, "source": "human"} | changes


BAD_ANNOTATIONS = {
    "not an object": "cat",
    "no label": annotation(label=None),
    "unknown shape": annotation(shape="blob"),
    "geometry not an object": annotation(geometry=[1, 2]),
    "geometry missing a key": annotation(geometry={"x": 1, "y": 1, "width": 2}),
    "geometry with an extra key": annotation(geometry={"x": 1, "y": 1, "width": 2, "height": 2, "z": 0}),
    "geometry as text": annotation(geometry={"x": "1", "y": 1, "width": 2, "height": 2}),
    "geometry NaN": annotation(geometry={"x": float("nan"), "y": 1, "width": 2, "height": 2}),
    "geometry true": annotation(geometry={"x": True, "y": 1, "width": 2, "height": 2}),
    "points not pairs": annotation(shape="polygon", geometry={"points": [[1, 2, 3]]}),
    "points not a list": annotation(shape="polygon", geometry={"points": "1,2"}),
    "attributes a list": annotation(attributes=[1]),
    "text a number": annotation(text=3),
    "score text": annotation(source="prediction", score="high"),
}


@pytest.mark.parametrize("record", BAD_ANNOTATIONS.values(), ids=BAD_ANNOTATIONS.keys())
def test_a_bad_annotation_is_a_problem_of_its_image(tmp_path, record):
    (tmp_path / "export.json").write_text(json.dumps(head(images=[image(annotations=[annotation(), record])])))
    (parsed,) = loupe_json.parse(tmp_path).images
    assert len(parsed.problems) == 1 and parsed.problems[0].startswith("annotations[1]: "), parsed.problems
    assert len(parsed.annotations) == 1


BAD_RECORDS = {
    "image not an object": (head(images=["a.jpg", image()]), "images[0]"),
    "image without a name": (head(images=[image(file_name=""), image()]), "images[0]"),
    "image of an unknown split": (head(images=[image(split="holdout")]), "images[0]"),
    "label without a name": (head(labels=[{"color": "#000000"}], images=[image()]), "labels[0]"),
    "label attributes not a list": (head(labels=[{"name": "cat", "attributes": "pose"}], images=[image()]), "labels[0]"),
}


@pytest.mark.parametrize("document, where", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_a_bad_image_or_label_record_is_a_problem_of_the_file(tmp_path, document, where):
    (tmp_path / "export.json").write_text(json.dumps(document))
    parsed = loupe_json.parse(tmp_path)
    assert [w for w, _ in parsed.problems] == [f"export.json {where}"]
    assert [i.path for i in parsed.images] == ["a.jpg"]


def test_a_bad_size_is_a_problem_of_the_image(tmp_path):
    (tmp_path / "export.json").write_text(json.dumps(head(images=[image(width=0), image(width=16, height="12")])))
    assert [len(i.problems) for i in loupe_json.parse(tmp_path).images] == [1, 1]


def test_another_json_beside_the_export_is_a_problem_not_a_refusal(tmp_path):
    (tmp_path / "export.json").write_text(json.dumps(head(images=[image()])))
    (tmp_path / "meta.json").write_text("{}")
    parsed = loupe_json.parse(tmp_path)
    assert [w for w, _ in parsed.problems] == ["meta.json"] and len(parsed.images) == 1
