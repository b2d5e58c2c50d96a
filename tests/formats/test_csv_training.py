"""CSV training file (Vertex AI / AutoML Vision layout): rows against the records and the database,
relative box coordinates, deterministic percentage sets, the tag map, and count() reading it back."""

import csv
from collections import Counter

import pytest

from core.extensions import db
from formats import csv_training, EXPORTS
from formats.base import ExportOptions
from models import Image
from services.annotations import replace_annotations
from services.export_source import LiveSource
from services.labels import create_label
from tests.factories import make_dataset, make_user
from tests.formats.memory_source import MemorySource, box, circle, labels, polygon, run_export, tag
from tests.support import insert_images


def rows(path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def test_classification_rows_are_set_path_label_and_unlabeled_images_keep_a_row(tmp_path):
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog), dataset_type="classification")
    source.add("a.jpg", tag(cat), split="train")
    source.add("b.jpg", tag(dog), split="validation", folder="line-3/2024")
    source.add("c.jpg", split="test")
    source.add("d.jpg", tag(cat), split="unassigned")
    source.add("e.jpg", tag(dog), split="review")

    written, counted, path = run_export(csv_training, source, tmp_path)

    assert EXPORTS["csv_training"] is csv_training
    assert path.name == "Cats-training.csv"
    assert rows(path) == [
        ["TRAIN", "a.jpg", "cat"], ["VALIDATION", "b.jpg", "dog"], ["TEST", "c.jpg"],
        ["UNASSIGNED", "d.jpg", "cat"], ["UNASSIGNED", "e.jpg", "dog"],  # review is held out of the three sets
    ]
    assert path.read_bytes().startswith(b"TRAIN,a.jpg,cat\r\n")  # no header
    assert written.images == 5 and written.annotations == 4 and written.per_label == {"cat": 2, "dog": 2}
    assert counted.per_split["unassigned"] == {"images": 2, "annotations": 2}


def test_full_path_writes_the_folder_and_names_with_commas_are_quoted(tmp_path):
    (cat,) = labels("cat, big")
    source = MemorySource(labels=(cat,), dataset_type="classification")
    source.add("a,1.jpg", tag(cat), folder="line-3/2024")

    _, counted, path = run_export(csv_training, source, tmp_path, full_path=True)

    assert path.read_bytes() == b'TRAIN,"line-3/2024/a,1.jpg","cat, big"\r\n'
    assert counted.per_label == {"cat, big": 1}


def test_multilabel_gets_one_row_per_class_and_regions_are_counted_as_skipped(tmp_path):
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog), dataset_type="multilabel")
    source.add("a.jpg", tag(cat), tag(dog), polygon(dog, (1, 1), (8, 1), (4, 9)))
    source.add("b.jpg", tag(dog))

    written, _, path = run_export(csv_training, source, tmp_path)

    assert rows(path) == [["TRAIN", "a.jpg", "cat"], ["TRAIN", "a.jpg", "dog"], ["TRAIN", "b.jpg", "dog"]]
    assert written.annotations == 3 and written.skipped == {"polygon: the classification layout has no regions": 1}


def test_anomaly_writes_classes_and_skips_defect_regions(tmp_path):
    normal, anomalous = labels("normal", "anomalous")
    source = MemorySource(labels=(normal, anomalous), dataset_type="anomaly")
    source.add("ok.jpg", tag(normal))
    source.add("bad.jpg", tag(anomalous), box(anomalous, 1, 1, 4, 4))

    written, _, path = run_export(csv_training, source, tmp_path)

    assert rows(path) == [["TRAIN", "ok.jpg", "normal"], ["TRAIN", "bad.jpg", "anomalous"]]
    assert written.skipped == {"box: the classification layout has no regions": 1}


def test_detection_rows_carry_relative_bounding_boxes(tmp_path):
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog), dataset_type="detection")
    source.add("a.jpg", box(cat, 2, 3, 20, 10), polygon(dog, (30, 6), (60, 12), (45, 42)), circle(cat, 58, 6, 12), size=(64, 48))
    source.add("b.jpg", polygon(cat, (1, 1), (9, 9), shape="polyline"), polygon(cat, (4, 4), shape="points"), size=(64, 48), split="test")

    written, counted, path = run_export(csv_training, source, tmp_path)

    lines = rows(path)
    assert [line[:3] for line in lines] == [["TRAIN", "a.jpg", "cat"], ["TRAIN", "a.jpg", "dog"], ["TRAIN", "a.jpg", "cat"], ["TEST", "b.jpg"]]
    assert all(len(line) == 11 and line[5:7] == ["", ""] and line[9:] == ["", ""] for line in lines[:3])
    coordinates = [[float(line[i]) for i in (3, 4, 7, 8)] for line in lines[:3]]
    assert coordinates[0] == pytest.approx([2 / 64, 3 / 48, 22 / 64, 13 / 48], abs=1e-6)
    assert coordinates[1] == pytest.approx([30 / 64, 6 / 48, 60 / 64, 42 / 48], abs=1e-6)
    # The circle's box (46..70, -6..18) is clamped to the image.
    assert coordinates[2] == pytest.approx([46 / 64, 0, 1, 18 / 48], abs=1e-6)
    assert lines[2][4] == "0" and lines[2][7] == "1"
    assert written.skipped == {"polyline: no bounding box in the Vertex layout": 1, "points: no bounding box in the Vertex layout": 1}
    assert counted.per_split == {"train": {"images": 1, "annotations": 3}, "test": {"images": 1, "annotations": 0}}


def percent_source(count: int) -> MemorySource:
    (cat,) = labels("cat")
    source = MemorySource(labels=(cat,), dataset_type="classification")
    for i in range(count):
        source.add(f"img-{i:03d}.jpg", tag(cat), size=(4, 3), split="train")
    return source


def sets_of(path) -> dict[str, str]:
    return {line[1]: line[0] for line in rows(path)}


def test_percentages_give_exact_counts_and_the_same_sets_every_run(tmp_path):
    source = percent_source(50)

    written, counted, path = run_export(csv_training, source, tmp_path, test=20, validation=10)
    first = path.read_bytes()
    again = tmp_path / "again"
    again.mkdir()
    _, _, path_again = run_export(csv_training, source, again, test=20, validation=10)

    assert Counter(sets_of(path).values()) == {"TRAIN": 35, "TEST": 10, "VALIDATION": 5}
    assert path_again.read_bytes() == first
    assert {split: counts["images"] for split, counts in counted.per_split.items()} == {"train": 35, "test": 10, "validation": 5}
    # The images' own splits (all train here) give way to the draw.
    assert written.per_split["test"]["images"] == 10


@pytest.mark.parametrize("count, test, validation, expected", [
    (7, 50, 50, {"TEST": 4, "VALIDATION": 3}),  # round half up, never more than the images
    (3, 10, 0, {"TRAIN": 3}),  # 0.3 of an image rounds to none
    (10, 15, 25, {"TEST": 2, "VALIDATION": 3, "TRAIN": 5}),  # 1.5 -> 2, 2.5 -> 3
    (1, 0, 50, {"VALIDATION": 1}),
])
def test_percentages_round_each_set_half_up(tmp_path, count, test, validation, expected):
    _, _, path = run_export(csv_training, percent_source(count), tmp_path, test=test, validation=validation)
    assert Counter(sets_of(path).values()) == expected


def test_the_draw_depends_on_the_images_not_on_chance(tmp_path):
    first, other = tmp_path / "first", tmp_path / "other"
    first.mkdir(), other.mkdir()
    _, _, a = run_export(csv_training, percent_source(40), first, test=25)
    source = percent_source(40)
    source.records.reverse()  # the same images in another order draw other sets, with the same counts
    _, _, b = run_export(csv_training, source, other, test=25)
    assert Counter(sets_of(a).values()) == Counter(sets_of(b).values()) == {"TEST": 10, "TRAIN": 30}
    assert sets_of(a) != sets_of(b)


@pytest.mark.parametrize("text, problem", [
    ("TRAINING,a.jpg,cat\r\n", "not a Vertex AI import row"),
    ("TRAIN,,cat\r\n", "not a Vertex AI import row"),
    ("TRAIN,a.jpg,cat,0.1,0.1,,,x,0.5,,\r\n", "not numbers"),
    ("TRAIN,a.jpg,cat,0.5,0.1,,,0.2,0.5,,\r\n", "within 0 to 1"),
    ("TRAIN,a.jpg,cat,0.1,0.1,,,1.2,0.5,,\r\n", "within 0 to 1"),
    ("TRAIN,a.jpg,cat,0.1\r\n", "not a Vertex AI import row"),
])
def test_count_refuses_a_file_that_is_not_the_layout(tmp_path, text, problem):
    path = tmp_path / "bad.csv"
    path.write_text(text, newline="")
    with pytest.raises(ValueError, match=problem):
        csv_training.count(path, ExportOptions(format="csv_training"))


def test_live_dataset_rows_match_the_database_and_the_tag_map_merges_labels(app_ctx, tmp_path):
    owner = make_user()
    dataset = make_dataset(owner, type="detection")
    cat = create_label(dataset, name="cat", default_shape="box")
    kitten = create_label(dataset, name="kitten", default_shape="box")
    dog = create_label(dataset, name="dog", default_shape="box")
    first, second, empty = insert_images(dataset, 3, split="train")
    for image_id, annotations in (
        (first, [{"label_id": cat.id, "shape": "box", "geometry": {"x": 8, "y": 12, "width": 16, "height": 24}}]),
        (second, [{"label_id": kitten.id, "shape": "box", "geometry": {"x": 0, "y": 0, "width": 64, "height": 48}},
                  {"label_id": dog.id, "shape": "box", "geometry": {"x": 32, "y": 24, "width": 32, "height": 24}}]),
    ):
        replace_annotations(db.session.get(Image, image_id), owner, annotations)
    db.session.get(Image, empty).split = "test"
    db.session.commit()

    source = LiveSource(dataset, tagmap={"Kitten": "cat", "dog": "hound"})
    options = ExportOptions(format="csv_training")
    path = tmp_path / csv_training.file_name(source, options)
    with open(path, "wb") as out:
        written = csv_training.export(source, options, out, lambda done: None)

    assert rows(path) == [
        ["TRAIN", "img_00000.jpg", "cat", "0.125", "0.25", "", "", "0.375", "0.75", "", ""],
        ["TRAIN", "img_00001.jpg", "cat", "0", "0", "", "", "1", "1", "", ""],
        ["TRAIN", "img_00001.jpg", "hound", "0.5", "0.5", "", "", "1", "1", "", ""],
        ["TEST", "img_00002.jpg"],
    ]
    counted = csv_training.count(path, options)
    assert counted.differences(written) == []
    assert counted.images == source.count() == 3 and counted.per_label == {"cat": 2, "hound": 1}
