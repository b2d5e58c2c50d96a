"""COCO instances import: the fixtures' counts, masks against pycocotools, our export read back, bad input."""

import contextlib
import io
import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from formats import coco
from formats.base import NotThisFormat
from formats.coco_masks import MAX_MASK_PIXELS, MaskProblem, decode_counts, join_parts, mask_polygon, orient, polygon_parts, rle_mask
from services.shapes import MAX_POINTS, area, geometry_problems
from tests.formats.memory_source import MemorySource, box, circle, labels, polygon, run_export, tag
from tests.support import FORMAT_FIXTURES

FIXTURES = FORMAT_FIXTURES
COCO_FIXTURES = ("coco_instances", "coco_with_unannotated_image", "coco_subsets_attributes_datumaro", "coco_rle_compressed_panopticapi")

# pycocotools 2.0 against numpy 2, in annToMask: harmless, and not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def load_coco(path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints its progress
        return COCO(str(path))


def by_path(parsed) -> dict:
    return {image.path: image for image in parsed.images}


def per_label(parsed) -> Counter:
    return Counter(a.label for image in parsed.images for a in image.annotations)


def rasterize(points, width: int, height: int) -> np.ndarray:
    """The pixels whose centres a polygon covers, drawn with Pillow at 4x and sampled at the centres:
    Pillow's own fill rounds vertices and takes in both edges, a pixel too many on pixel corners."""
    scale = 4
    canvas = PILImage.new("L", (width * scale, height * scale), 0)
    ImageDraw.Draw(canvas).polygon([(x * scale, y * scale) for x, y in points], fill=1)
    return np.array(canvas)[scale // 2 :: scale, scale // 2 :: scale]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def test_coco_2017_layout_gives_every_object_once_with_the_crowd_mask():
    parsed = coco.parse(FIXTURES / "coco_instances")

    document = json.loads((FIXTURES / "coco_instances/annotations/instances_val2017.json").read_text())
    assert [label.name for label in parsed.labels] == [c["name"] for c in document["categories"]] and len(parsed.labels) == 80
    images = by_path(parsed)
    assert {path: len(image.annotations) for path, image in images.items()} == {"000000255917.jpg": 17, "000000000139.jpg": 20}
    assert per_label(parsed) == {
        "car": 14, "chair": 5, "vase": 4, "person": 3, "tv": 2, "book": 2, "traffic light": 1, "truck": 1, "potted plant": 1,
        "refrigerator": 1, "microwave": 1, "clock": 1, "dining table": 1,
    }
    crowd = [a for image in parsed.images for a in image.annotations if a.attributes.get("iscrowd")]
    assert [(a.label, a.shape) for a in crowd] == [("car", "polygon")]
    assert crowd[0] in images["000000255917.jpg"].annotations
    for image in parsed.images:
        assert (image.split, image.units, image.problems) == ("validation", "pixel", [])
        assert image.file == FIXTURES / "coco_instances/val2017" / image.path
    assert parsed.problems == []


def test_bbox_only_file_keeps_the_image_without_annotations_and_the_scores():
    parsed = coco.parse(FIXTURES / "coco_with_unannotated_image")

    assert [label.name for label in parsed.labels] == ["bus", "car"]
    assert [(i.path, len(i.annotations), i.width, i.height, i.split) for i in parsed.images] == [
        ("fake1.jpg", 2, 800, 800, None), ("fake2.jpg", 1, 800, 800, None), ("fake3.jpg", 0, 800, 800, None),
    ]
    assert per_label(parsed) == {"bus": 2, "car": 1}
    annotation = parsed.images[0].annotations[0]
    assert (annotation.shape, annotation.geometry, annotation.score, annotation.attributes) == (
        "box", {"x": 0, "y": 0, "width": 20, "height": 20}, 1.0, {},
    )
    assert [image.file for image in parsed.images] == [FIXTURES / f"coco_with_unannotated_image/images/fake{n}.jpg" for n in (1, 2, 3)]


def test_subset_files_give_splits_and_ids_are_per_file():
    parsed = coco.parse(FIXTURES / "coco_subsets_attributes_datumaro")

    assert [label.name for label in parsed.labels] == ["a", "b", "c"]
    images = by_path(parsed)
    assert {p: (i.split, len(i.annotations)) for p, i in images.items()} == {"a.jpg": ("train", 1), "b.jpg": ("validation", 2)}
    (train_box,) = images["a.jpg"].annotations
    assert train_box.shape == "box"
    polygon_annotation, crowd = images["b.jpg"].annotations
    assert (polygon_annotation.label, polygon_annotation.attributes) == ("a", {"x": 1, "y": "hello"})
    assert polygon_annotation.geometry == {"points": [[0.0, 0.0], [1.0, 0.0], [1.0, 2.0], [0.0, 2.0]]}
    # counts [0, 20, 30] down columns of 10: the first two columns, whole.
    assert (crowd.label, crowd.attributes, crowd.shape) == ("b", {"iscrowd": True}, "polygon")
    assert crowd.geometry == {"points": [[0, 0], [2, 0], [2, 10], [0, 10]]}
    assert images["a.jpg"].file == FIXTURES / "coco_subsets_attributes_datumaro/images/train/a.jpg"
    assert images["b.jpg"].file == FIXTURES / "coco_subsets_attributes_datumaro/images/val/b.jpg"


def test_compressed_rle_file_beside_its_images_folder():
    parsed = coco.parse(FIXTURES / "coco_rle_compressed_panopticapi")

    assert len(parsed.labels) == 133 and parsed.labels[0].color and parsed.labels[0].color.startswith("#")
    images = by_path(parsed)
    assert {p: len(i.annotations) for p, i in images.items()} == {"000000142238.jpg": 18, "000000439180.jpg": 32}
    assert per_label(parsed) == {
        "person": 28, "horse": 12, "truck": 2, "tree-merged": 2, "sky-other-merged": 2, "grass-merged": 2, "sports ball": 1, "gravel": 1,
    }
    crowd = Counter(a.label for i in parsed.images for a in i.annotations if a.attributes.get("iscrowd"))
    assert crowd == {"person": 2, "horse": 1}
    assert all(i.file == FIXTURES / "coco_rle_compressed_panopticapi/input_images" / i.path for i in parsed.images)


@pytest.mark.parametrize("fixture", COCO_FIXTURES)
def test_every_imported_shape_is_valid_for_loupe(fixture):
    parsed = coco.parse(FIXTURES / fixture)

    for image in parsed.images:
        for annotation in image.annotations:
            assert geometry_problems(annotation.shape, annotation.geometry, image.width, image.height) == []


def fixture_objects(fixture: str):
    """(COCO's annotation, our annotation, the image) for every object of a fixture, in file order."""
    root = FIXTURES / fixture
    parsed = by_path(coco.parse(root))
    for path in sorted(root.rglob("*.json")):
        api = load_coco(path)
        for image_id, record in api.imgs.items():
            image = parsed[record["file_name"]]
            objects = api.loadAnns(api.getAnnIds(imgIds=[image_id]))
            assert len(objects) == len(image.annotations)
            yield from ((api, obj, ours, image) for obj, ours in zip(objects, image.annotations))


def test_every_rle_mask_traces_to_a_polygon_that_fills_the_mask():
    checked = 0
    for fixture in COCO_FIXTURES:
        for api, obj, ours, image in fixture_objects(fixture):
            if isinstance(obj.get("segmentation"), dict):
                expected = api.annToMask(obj).astype(bool)
                assert iou(rasterize(ours.geometry["points"], image.width, image.height), expected) >= 0.95, obj["id"]
                checked += 1
    assert checked == 1 + 1 + 50


def test_compressed_counts_decode_to_pycocotools_mask_exactly():
    for api, obj, _, image in fixture_objects("coco_rle_compressed_panopticapi"):
        height, width, counts = rle_mask(obj["segmentation"])
        flat = np.zeros(height * width, dtype=np.uint8)
        position = 0
        for k, run in enumerate(counts):
            flat[position : position + run] = k % 2
            position += run
        assert np.array_equal(flat.reshape(width, height).T, coco_mask.decode(obj["segmentation"]))


def test_polygon_in_three_parts_is_one_polygon_with_the_parts_area():
    (api, obj, ours, image), = [o for o in fixture_objects("coco_instances") if o[1]["id"] == 2204286]
    parts = polygon_parts(obj["segmentation"])
    assert len(parts) == 3 and ours.label == "dining table"

    joined = [tuple(p) for p in ours.geometry["points"]]
    assert area("polygon", {"points": joined}) == pytest.approx(sum(area("polygon", {"points": p}) for p in parts), rel=0.01)
    assert iou(rasterize(joined, image.width, image.height), api.annToMask(obj).astype(bool)) >= 0.95


def test_parts_of_either_orientation_join_into_their_union():
    square = [(0, 0), (4, 0), (4, 4), (0, 4)]
    far = [(10, 10), (10, 12), (12, 12), (12, 10)]  # the other way round
    joined = join_parts([orient(square), orient(far)])

    assert len(joined) == 4 + 4 + 2
    assert area("polygon", {"points": joined}) == 16 + 4
    assert rasterize(joined, 16, 16).sum() == 16 + 4


def rle_of(mask: np.ndarray) -> tuple[int, int, list[int]]:
    """An uncompressed COCO RLE of a 0/1 array (column-major, background first)."""
    flat = mask.T.reshape(-1)
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    return mask.shape[0], mask.shape[1], counts


@pytest.mark.parametrize("rows, expected_pixels", [
    (["#"], 1),
    (["#.", ".#"], 2),  # corner neighbours: two blobs, bridged
    (["###", "#.#", "###"], 9),  # the hole is filled
    (["#####", "#...#", "#.#.#", "#...#", "#####"], 25),  # the island in the hole is covered
    (["##..#", "#...#", "..#..", "#####"], 11),
])
def test_traced_mask_covers_its_pixels_with_holes_filled(rows, expected_pixels):
    mask = np.array([[c == "#" for c in row] for row in rows], dtype=np.uint8)
    height, width, counts = rle_of(mask)

    points = mask_polygon(height, width, counts)

    filled = rasterize(points, width, height)
    assert filled.sum() == expected_pixels
    assert (filled >= mask).all()
    assert area("polygon", {"points": points}) == expected_pixels


def test_an_outline_past_loupes_point_limit_is_simplified_to_fit():
    mask = np.zeros((6000, 64), dtype=np.uint8, order="F")
    for y in range(6000):
        mask[y, : 50 + y % 2] = 1  # a right edge that zigzags every row: two corners a row
    height, width, counts = rle_mask({"size": [6000, 64], "counts": coco_mask.encode(mask)["counts"].decode()})

    points = mask_polygon(height, width, counts)

    assert 4 <= len(points) <= MAX_POINTS
    assert area("polygon", {"points": points}) == pytest.approx(int(mask.sum()), rel=0.01)
    assert geometry_problems("polygon", {"points": points}, width, height) == []


def test_a_mask_of_more_blobs_than_a_polygon_holds_is_refused():
    mask = np.zeros((100, 100), dtype=np.uint8)
    mask[::2, ::2] = 1

    with pytest.raises(MaskProblem, match="2500 blobs"):
        mask_polygon(*rle_of(mask))


def test_a_traced_blob_keeps_only_its_corners():
    mask = np.zeros((6, 7), dtype=np.uint8)
    mask[1:5, 2:6] = 1
    mask[2:4, 3:5] = 0

    assert mask_polygon(*rle_of(mask)) == [[2, 1], [6, 1], [6, 5], [2, 5]]


# ---- our export, read back --------------------------------------------------------------------


@pytest.fixture
def dataset():
    cat, dog, bird, unused = labels("cat", "dog", "bird", "unused")
    source = MemorySource(labels=(cat, dog, bird, unused))
    source.add("a.jpg", box(cat, 2, 3, 20, 10, attributes={"occluded": True, "pose": "left"}), polygon(dog, (30, 5), (60, 8.5), (45, 40)),
               tag(bird, attributes={"weather": "rain"}), size=(64, 48))
    source.add("a.jpg", circle(bird, 30.25, 24, 12), box(dog, 0, 0, 10, 8, source="prediction", score=0.75),
               tag(cat, text="a note"), size=(64, 48), split="validation", folder="park")
    source.add("b.png", polygon(cat, (1, 1), (9, 1), (5, 7), text="seven"), size=(16, 12), split="test", folder="park/deep", fmt="PNG")
    source.add("empty.jpg", size=(16, 12), split="review")
    return source


def expected_annotations(source: MemorySource, image) -> list[tuple]:
    """An image's annotations as the import gives them: the tags (our `classes`) first."""
    names = {label.id: label.name for label in source.labels}
    ordered = [a for a in image.annotations if a.shape == "tag"] + [a for a in image.annotations if a.shape != "tag"]
    return [(names[a.label_id], a.shape, a.geometry, a.attributes, a.score, a.text) for a in ordered]


def assert_read_back(parsed, source: MemorySource) -> None:
    assert [label.name for label in parsed.labels] == ["cat", "dog", "bird", "unused"]
    assert parsed.problems == []
    assert sorted(i.path for i in parsed.images) == sorted(image.path for image in source.records)
    images = by_path(parsed)
    for image in source.records:
        got = images[image.path]
        assert (got.split, got.width, got.height, got.problems) == (image.split, image.width, image.height, [])
        expected = expected_annotations(source, image)
        assert [(a.label, a.shape, a.attributes, a.score, a.text) for a in got.annotations] == [e[:2] + e[3:] for e in expected]
        for annotation, (*_, geometry, _, _, _) in zip(got.annotations, expected):
            assert_geometry_close(annotation.geometry, geometry)


def assert_geometry_close(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if key == "points":
            assert np.allclose(got[key], value, atol=1e-6, rtol=0), (got, expected)
        else:
            assert got[key] == pytest.approx(value, abs=1e-6)


def test_our_zip_export_reads_back_with_its_images(dataset, tmp_path):
    _, _, path = run_export(coco, dataset, tmp_path, full_path=True)
    root = tmp_path / "upload"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(root)

    parsed = coco.parse(root)

    assert_read_back(parsed, dataset)
    images = by_path(parsed)
    for image in dataset.records:
        assert images[image.path].file == root / "images" / image.split / image.path
        assert images[image.path].file.read_bytes() == dataset.blobs[image.storage_key]


def test_our_json_export_alone_reads_back_with_its_splits(dataset, tmp_path):
    _, _, path = run_export(coco, dataset, tmp_path, full_path=True, include_images=False)
    root = tmp_path / "upload"
    root.mkdir()
    shutil.move(path, root / path.name)

    parsed = coco.parse(root)

    assert_read_back(parsed, dataset)
    assert all(image.file is None for image in parsed.images)


def test_images_are_found_beside_the_json_and_by_their_base_name(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos/x.jpg").write_bytes(b"x")
    (tmp_path / "y.jpg").write_bytes(b"y")
    document = {"images": [{"id": 1, "file_name": "./y.jpg", "width": 4, "height": 4},
                           {"id": 2, "file_name": "/elsewhere/x.jpg", "width": 4, "height": 4},
                           {"id": 3, "file_name": "z.jpg", "width": 4, "height": 4}],
                "annotations": [], "categories": []}
    (tmp_path / "labels.json").write_text(json.dumps(document))

    parsed = coco.parse(tmp_path)

    assert [(i.path, i.file) for i in parsed.images] == [
        ("y.jpg", tmp_path / "y.jpg"), ("elsewhere/x.jpg", tmp_path / "photos/x.jpg"), ("z.jpg", None),
    ]


# ---- bad input --------------------------------------------------------------------------------


def write(tmp_path, text: str | bytes) -> Path:
    root = tmp_path / "upload"
    root.mkdir()
    (root / "instances_train.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


@pytest.mark.parametrize("text", [
    "not json at all",
    "[]",
    '{"images": [], "annotations": []}',
    '{"images": {}, "annotations": [], "categories": []}',
    '{"images": "x", "annotations": [], "categories": []}',
    "[" * 100_000 + "]" * 100_000,
    '{"images": [], "annotations": [' + "[" * 50_000 + "]" * 50_000 + '], "categories": []}',
    b'{"images": [], "annotations": [], "categories": [{"name": "\xff"}]}',
])
def test_a_file_that_is_not_coco_instances_is_not_this_format(tmp_path, text):
    with pytest.raises(NotThisFormat):
        coco.parse(write(tmp_path, text))


def test_a_folder_without_instances_json_is_not_this_format(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "settings.json").write_text('{"theme": "dark"}')

    with pytest.raises(NotThisFormat, match="no COCO instances JSON"):
        coco.parse(tmp_path)


GOOD_IMAGE = {"id": 1, "file_name": "a.jpg", "width": 10, "height": 8}
GOOD_OBJECT = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}
BIG = 2**40  # an id past 32 bits


def document(*objects, images=(), categories=()) -> dict:
    return {
        "images": [GOOD_IMAGE, *images],
        "annotations": [GOOD_OBJECT, *objects],
        "categories": [{"id": 1, "name": "cat"}, {"id": BIG, "name": "dog"}, *categories],
    }


def bad(**fields) -> dict:
    return {"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 3, 3], **fields}


BAD_OBJECTS = {
    "unknown category": bad(category_id=99),
    "category as text": bad(category_id="1"),
    "bbox of three": bad(bbox=[0, 0, 3]),
    "bbox of text": bad(bbox=["0", 0, 3, 3]),
    "bbox NaN": bad(bbox=[float("nan"), 0, 3, 3]),
    "bbox Infinity": bad(bbox=[0, float("inf"), 3, 3]),
    "bbox negative": bad(bbox=[0, 0, -3, 3]),
    "no bbox or segmentation": {"id": 7, "image_id": 1, "category_id": 1},
    "segmentation text": bad(segmentation="polygon"),
    "segmentation number": bad(segmentation=5),
    "polygon odd": bad(segmentation=[[0, 0, 1, 0, 1]]),
    "polygon short": bad(segmentation=[[0, 0, 1, 1]]),
    "polygon NaN": bad(segmentation=[[0, 0, 1, 0, float("nan"), 1]]),
    "polygon part not a list": bad(segmentation=[5]),
    "RLE sum": bad(segmentation={"size": [8, 10], "counts": [0, 5]}),
    "RLE negative": bad(segmentation={"size": [8, 10], "counts": [90, -10]}),
    "RLE counts type": bad(segmentation={"size": [8, 10], "counts": {"a": 1}}),
    "RLE size": bad(segmentation={"size": [8], "counts": [80]}),
    "RLE size mismatch": bad(segmentation={"size": [10, 8], "counts": [80]}),
    "RLE huge": bad(segmentation={"size": [20_000, 20_000], "counts": [400_000_000]}),
    "RLE bad character": bad(segmentation={"size": [8, 10], "counts": "~~~ "}),
    "RLE unfinished": bad(segmentation={"size": [8, 10], "counts": "0o"}),
    "RLE empty": bad(segmentation={"size": [8, 10], "counts": [80]}),
    "attributes list": bad(attributes=[1, 2]),
    "score text": bad(score="high"),
    "score NaN": bad(score=float("nan")),
    "text number": bad(text=5),
}


@pytest.mark.parametrize("case", BAD_OBJECTS)
def test_a_bad_object_is_a_problem_of_its_image_and_the_rest_imports(tmp_path, case):
    parsed = coco.parse(write(tmp_path, json.dumps(document(BAD_OBJECTS[case]))))

    (image,) = parsed.images
    assert len(image.problems) == 1 and image.problems[0].startswith("annotation 7: ")
    assert [(a.label, a.geometry) for a in image.annotations] == [("cat", {"x": 1, "y": 1, "width": 2, "height": 2})]
    assert parsed.problems == []


BAD_RECORDS = {
    "object of an unknown image": document(bad(image_id=5)),
    "object of an image id as a list": document(bad(image_id=[1])),
    "object that is not an object": document("box"),
    "image id as text": document(images=[{"id": "2", "file_name": "b.jpg"}]),
    "image without a file name": document(images=[{"id": 2, "width": 4, "height": 4}]),
    "image named by dots": document(images=[{"id": 2, "file_name": "./", "width": 4, "height": 4}]),
    "image of negative width": document(images=[{"id": 2, "file_name": "b.jpg", "width": -4, "height": 4}]),
    "image id twice": document(images=[{"id": 1, "file_name": "b.jpg"}]),
    "category without a name": document(categories=[{"id": 3}]),
    "category id twice": document(categories=[{"id": 1, "name": "again"}]),
    "category that is a list": document(categories=[[1, "x"]]),
}


@pytest.mark.parametrize("case", BAD_RECORDS)
def test_a_bad_record_without_an_image_is_a_problem_of_the_file(tmp_path, case):
    parsed = coco.parse(write(tmp_path, json.dumps(BAD_RECORDS[case])))

    assert len(parsed.problems) == 1 and parsed.problems[0][0] == "instances_train.json"
    assert [(i.path, len(i.annotations), i.problems) for i in parsed.images] == [("a.jpg", 1, [])]


def test_numbers_past_any_float_are_problems_not_crashes(tmp_path):
    text = json.dumps(document(bad(bbox=[0, 0, 3, 3]), bad(id=8, bbox=[0, 0, 4, 4]), bad(id=9, bbox=[0, 0, 5, 5])))
    text = text.replace("[0, 0, 3, 3]", "[0, 0, " + "9" * 5000 + ", 3]").replace("[0, 0, 4, 4]", "[0, 0, 1e999, 4]")
    text = text.replace('"id": 9', '"id": ' + "9" * 400)

    (image,) = coco.parse(write(tmp_path, text)).images

    assert [p.split(":")[0] for p in image.problems] == ["annotation 7", "annotation 8"]
    assert len(image.annotations) == 2  # the good box, and #9 (only its id is odd; ids of objects are not used)


def test_a_huge_mask_is_refused_before_it_is_decoded():
    with pytest.raises(ValueError, match="over the limit"):
        rle_mask({"size": [MAX_MASK_PIXELS + 1, 1], "counts": [MAX_MASK_PIXELS + 1]})


def test_compressed_counts_decode_as_pycocotools_encodes():
    mask = np.zeros((7, 9), dtype=np.uint8, order="F")
    mask[1:5, 2:7] = 1
    mask[3, 8] = 1
    encoded = coco_mask.encode(mask)

    counts = decode_counts(encoded["counts"].decode())

    assert rle_of(mask)[2] == counts
