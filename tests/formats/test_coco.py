"""COCO instances export: loaded by pycocotools, masks against the shapes, counted back from the file."""

import contextlib
import io
import json
import zipfile

import pytest
from pycocotools.coco import COCO

from formats import EXPORTS, coco
from formats.base import ExportOptions
from services.shapes import AREA_SHAPES, area
from tests.formats.memory_source import MemorySource, assert_originals, box, circle, labels, polygon, run_export, tag

# pycocotools 2.0 against numpy 2, in annToMask: harmless, and not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def load_coco(path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints its progress
        return COCO(str(path))


def instances(archive: zipfile.ZipFile, split: str, tmp_path):
    """One split's instances file, extracted, as pycocotools' COCO and as the raw document."""
    target = tmp_path / f"instances_{split}.json"
    target.write_bytes(archive.read(f"annotations/instances_{split}.json"))
    return load_coco(target), json.loads(target.read_text())


def assert_masks_match_shapes(api: COCO, source: MemorySource) -> int:
    """annToMask on every annotation: its pixel count is the shape's area, up to the rasterized edge."""
    shapes = {(image.id, i): a for image in source.records for i, a in enumerate(a for a in image.annotations if a.shape in AREA_SHAPES)}
    checked = 0
    for image_id in api.getImgIds():
        for i, annotation in enumerate(api.loadAnns(api.getAnnIds(imgIds=[image_id]))):
            shape = shapes[(image_id, i)]
            expected = area(shape.shape, shape.geometry)
            assert annotation["area"] == pytest.approx(expected)
            mask = api.annToMask(annotation)
            assert mask.shape == (api.imgs[image_id]["height"], api.imgs[image_id]["width"])
            assert abs(int(mask.sum()) - expected) <= 0.03 * expected + 2, (shape, int(mask.sum()))
            checked += 1
    return checked


@pytest.fixture
def detection():
    cat, dog, bird = labels("cat", "dog", "bird")
    source = MemorySource(labels=(cat, dog, bird))
    source.add("a.jpg", box(cat, 2, 3, 20, 10, attributes={"occluded": True}), polygon(dog, (30, 5), (60, 8), (45, 40)),
               size=(64, 48))
    source.add("b.png", circle(bird, 30, 24, 12), box(dog, 0, 0, 10, 8, source="prediction", score=0.75),
               polygon(cat, (1, 1), (9, 9), shape="polyline"), polygon(cat, (4, 4), shape="points"), size=(64, 48), fmt="PNG")
    source.add("empty.jpg", size=(64, 48))
    return source


def test_detection_archive_loads_in_pycocotools_and_masks_match_the_shapes(detection, tmp_path):
    written, counted, path = run_export(coco, detection, tmp_path)

    assert path.name == "Cats-coco.zip"
    assert written.images == 3 and written.annotations == 4
    assert dict(written.per_label) == {"cat": 1, "dog": 2, "bird": 1}
    assert dict(written.skipped) == {coco.SKIP_REASONS["polyline"]: 1, coco.SKIP_REASONS["points"]: 1}
    with zipfile.ZipFile(path) as archive:
        assert sorted(name for name in archive.namelist() if name.startswith("annotations/")) == ["annotations/instances_train.json"]
        assert_originals(archive, detection, {image.id: f"images/train/{image.file_name}" for image in detection.records})
        api, document = instances(archive, "train", tmp_path)
    assert assert_masks_match_shapes(api, detection) == 4
    assert [(c["id"], c["name"]) for c in document["categories"]] == [(1, "cat"), (2, "dog"), (3, "bird")]
    assert [(i["id"], i["file_name"], i["width"], i["height"], i["split"]) for i in document["images"]] == [
        (100, "a.jpg", 64, 48, "train"), (101, "b.png", 64, 48, "train"), (102, "empty.jpg", 64, 48, "train"),
    ]
    first, *_, prediction = document["annotations"]
    assert first | {"segmentation": None} == {
        "id": 1, "image_id": 100, "category_id": 1, "shape": "box", "bbox": [2, 3, 20, 10], "area": 200, "iscrowd": 0,
        "segmentation": None, "attributes": {"occluded": True},
    }
    assert first["segmentation"] == [[2, 3, 22, 3, 22, 13, 2, 13]]
    assert prediction["score"] == 0.75 and "score" not in first
    by_shape = {a["shape"]: a for a in document["annotations"]}
    assert len(by_shape["circle"]["segmentation"][0]) == 2 * 64
    assert by_shape["circle"]["bbox"] == [18, 12, 24, 24]
    assert api.getAnnIds(imgIds=[102]) == []


def test_json_alone_in_percent_coordinates(detection, tmp_path):
    written, _, path = run_export(coco, detection, tmp_path, include_images=False, coordinates="percent")

    assert path.name == "Cats-coco.json"
    document = json.loads(path.read_text())
    api = load_coco(path)
    assert len(api.imgs) == 3 and len(api.anns) == written.annotations == 4
    by_shape = {a["shape"]: a for a in reversed(document["annotations"])}  # the first of each
    assert by_shape["box"]["bbox"] == pytest.approx([2 / 64 * 100, 3 / 48 * 100, 20 / 64 * 100, 10 / 48 * 100])
    assert by_shape["box"]["area"] == pytest.approx(200 * 100 / 64 * 100 / 48)
    # A circle's percent box is measured in pixels first: 24 px is 37.5 % of the width, 50 % of the height.
    assert by_shape["circle"]["bbox"] == pytest.approx([18 / 64 * 100, 12 / 48 * 100, 37.5, 50])
    assert by_shape["polygon"]["segmentation"] == [pytest.approx([30 / 0.64, 5 / 0.48, 60 / 0.64, 8 / 0.48, 45 / 0.64, 40 / 0.48])]
    assert document["images"][0]["width"] == 64  # sizes stay in pixels


def test_each_split_has_its_instances_file_and_image_folder(tmp_path):
    cell, = labels("cell")
    source = MemorySource(labels=(cell,), dataset_type="segmentation", version_name="V002")
    source.add("t.jpg", polygon(cell, (1, 1), (12, 1), (12, 10)), split="train")
    source.add("v.jpg", circle(cell, 8, 6, 4), split="validation")
    source.add("u.jpg", box(cell, 1, 1, 4, 4), split="unassigned")
    source.add("r.jpg", split="review")
    written, counted, path = run_export(coco, source, tmp_path)

    assert path.name == "Cats-V002-coco.zip"
    assert {split: dict(v) for split, v in counted.per_split.items()} == {
        "train": {"images": 1, "annotations": 1}, "validation": {"images": 1, "annotations": 1},
        "unassigned": {"images": 1, "annotations": 1}, "review": {"images": 1, "annotations": 0},
    }
    with zipfile.ZipFile(path) as archive:
        for image in source.records:
            api, document = instances(archive, image.split, tmp_path)
            assert [i["file_name"] for i in document["images"]] == [image.file_name]
            assert archive.read(f"images/{image.split}/{image.file_name}") == source.blobs[image.storage_key]
            assert_masks_match_shapes(api, MemorySource(labels=source.labels, records=[image]))
        ids = [a["id"] for split in ("train", "validation", "unassigned") for a in instances(archive, split, tmp_path)[1]["annotations"]]
    assert sorted(ids) == [1, 2, 3]  # unique across the splits' files


def test_whole_image_classes_are_on_the_image_record_and_counted(tmp_path):
    ok, defect, unclassified = labels("ok", "defect", "Unclassified")
    source = MemorySource(labels=(ok, defect, unclassified), dataset_type="classification")
    source.add("1.jpg", tag(ok), tags=("blurry",))
    source.add("2.jpg", tag(defect, source="prediction", score=0.4))
    source.add("3.jpg")
    written, counted, path = run_export(coco, source, tmp_path, include_images=False)

    assert dict(counted.per_label) == {"ok": 1, "defect": 1} and not written.skipped
    document = json.loads(path.read_text())
    assert document["annotations"] == []
    assert [i.get("classes") for i in document["images"]] == [
        [{"category_id": 1, "attributes": {}}], [{"category_id": 2, "attributes": {}, "score": 0.4}], None,
    ]
    assert document["images"][0]["tags"] == ["blurry"]
    assert len(load_coco(path).imgs) == 3


def test_repeated_names_are_made_unique_and_full_paths_keep_folders(tmp_path):
    cat, = labels("cat")
    source = MemorySource(labels=(cat,))
    source.add("a.jpg", box(cat, 1, 1, 4, 4), folder="x")
    source.add("A.JPG", box(cat, 2, 2, 4, 4), folder="y")
    source.add("a.jpg", folder="y/z")

    written, _, path = run_export(coco, source, tmp_path)
    assert written.renamed == 2 and written.as_dict()["renamed"] == 2
    with zipfile.ZipFile(path) as archive:
        names = [i["file_name"] for i in instances(archive, "train", tmp_path)[1]["images"]]
        assert names == ["a.jpg", "A~101.JPG", "a~102.jpg"]
        assert_originals(archive, source, {image.id: f"images/train/{name}" for image, name in zip(source.records, names)})

    written, _, path = run_export(coco, source, tmp_path, full_path=True)
    assert written.renamed == 0 and "renamed" not in written.as_dict()
    with zipfile.ZipFile(path) as archive:
        names = [i["file_name"] for i in instances(archive, "train", tmp_path)[1]["images"]]
        assert names == ["x/a.jpg", "y/A.JPG", "y/z/a.jpg"]
        assert_originals(archive, source, {image.id: f"images/train/{name}" for image, name in zip(source.records, names)})


def test_exporting_twice_gives_the_same_bytes(detection, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    assert run_export(coco, detection, first)[2].read_bytes() == run_export(coco, detection, second)[2].read_bytes()


def test_count_refuses_an_archive_whose_images_and_instances_differ(detection, tmp_path):
    _, _, path = run_export(coco, detection, tmp_path)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(broken, "w") as copy:
        for info in archive.infolist():
            if info.filename != "images/train/b.png":
                copy.writestr(info, archive.read(info))
    with pytest.raises(ValueError, match="images/train/b.png"):
        coco.count(broken, ExportOptions(format="coco"))


def test_coco_is_registered():
    assert EXPORTS["coco"] is coco


def test_live_dataset_exports_through_the_real_source(app_ctx, tmp_path):
    from services.export_source import LiveSource
    from tests.formats.memory_source import annotated_dataset

    dataset, originals = annotated_dataset()
    source = LiveSource(dataset)
    written, counted, path = run_export(coco, source, tmp_path, full_path=True)

    assert written.images == 3 and dict(written.per_label) == {"cat": 1, "dog": 2}
    assert dict(written.skipped) == {coco.SKIP_REASONS["polyline"]: 1}
    with zipfile.ZipFile(path) as archive:
        train, train_document = instances(archive, "train", tmp_path)
        validation, validation_document = instances(archive, "validation", tmp_path)
        paths = {i["id"]: f"images/{i['split']}/{i['file_name']}" for d in (train_document, validation_document) for i in d["images"]}
        assert sorted(paths.values()) == ["images/train/a.jpg", "images/validation/park/a.jpg", "images/validation/park/empty.jpg"]
        for image_id, data in originals.items():
            assert archive.read(paths[image_id]) == data
    records = list(source.images())
    assert assert_masks_match_shapes(train, MemorySource(labels=source.labels, records=records)) == 2
    assert assert_masks_match_shapes(validation, MemorySource(labels=source.labels, records=records)) == 1
