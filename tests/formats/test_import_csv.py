"""Annotation CSV import: the third-party layouts of the fixtures with their exact counts, Loupe's
own CSV back from export() as it went in, and bad rows as problems, never an exception."""

from collections import Counter

import pytest

from formats import annotation_csv
from formats.base import ExportAnnotation, ExportLabel, NotThisFormat
from tests.formats.memory_source import MemorySource, export_and_parse, box, circle, labels, polygon, tag
from tests.support import FORMAT_FIXTURES

FIXTURES = FORMAT_FIXTURES


def assert_close(got, want, where="geometry"):
    """Same keys and lengths, numbers within 1e-6 (the tolerance of a round trip through text)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{where}: {got} != {want}"
        for key in want:
            assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got} != {want}"
        for index, (a, b) in enumerate(zip(got, want)):
            assert_close(a, b, f"{where}[{index}]")
    else:
        assert got == pytest.approx(want, abs=1e-6), f"{where}: {got} != {want}"


def tags_of(parsed) -> Counter:
    return Counter(a.label for image in parsed.images for a in image.annotations)


def by_path(parsed) -> dict:
    return {image.path: image for image in parsed.images}


def test_classification_list_gives_one_tag_per_row_and_finds_the_images_by_name():
    parsed = annotation_csv.parse(FIXTURES / "csv_classification")
    # README: 5 images and 2 classes (dog 2, cat 3).
    assert [label.name for label in parsed.labels] == ["dog", "cat"]
    assert [image.path for image in parsed.images] == ["1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg"]
    assert tags_of(parsed) == {"dog": 2, "cat": 3}
    assert all(a.shape == "tag" for image in parsed.images for a in image.annotations)
    # ann.csv names 1.jpg; the file is images/1.jpg, the only image of that name.
    assert by_path(parsed)["1.jpg"].file == FIXTURES / "csv_classification/images/1.jpg"
    assert parsed.problems == [] and not any(image.problems for image in parsed.images)


def test_one_hot_list_gives_a_tag_per_1():
    parsed = annotation_csv.parse(FIXTURES / "csv_multilabel")
    # README: 6 images, 9 positive labels (dog 3, cat 3, person 3), each image 1 or 2.
    assert [label.name for label in parsed.labels] == ["dog", "cat", "person"]
    assert len(parsed.images) == 6
    assert tags_of(parsed) == {"dog": 3, "cat": 3, "person": 3}
    assert {len(image.annotations) for image in parsed.images} == {1, 2}
    assert [a.label for a in by_path(parsed)["5.jpg"].annotations] == ["dog", "person"]


def test_roboflow_lists_with_comma_space_separators_take_the_split_of_their_folder():
    parsed = annotation_csv.parse(FIXTURES / "csv_multilabel_roboflow")
    # README: 3 images, 4 positive labels: train_001 label_0, train_002 label_1, val_001 both.
    images = by_path(parsed)
    assert {path: [a.label for a in image.annotations] for path, image in images.items()} == {
        "train_001.jpg": ["label_0"], "train_002.jpg": ["label_1"], "val_001.jpg": ["label_0", "label_1"],
    }
    assert {path: image.split for path, image in images.items()} == {"train_001.jpg": "train", "train_002.jpg": "train", "val_001.jpg": "validation"}
    assert images["val_001.jpg"].file == FIXTURES / "csv_multilabel_roboflow/val/val_001.jpg"
    assert [label.name for label in parsed.labels] == ["label_0", "label_1"]


def test_vott_boxes_come_as_the_files_give_them_even_outside_the_image():
    parsed = annotation_csv.parse(FIXTURES / "csv_detection_vott")
    # README: 4 images, 5 boxes; train img0003 x2, img0004 x1; test img0001, img0002; helmet 3, person 2.
    images = by_path(parsed)
    assert {path: (image.split, len(image.annotations)) for path, image in images.items()} == {
        "img0001.jpg": ("test", 1), "img0002.jpg": ("test", 1), "img0003.jpg": ("train", 2), "img0004.jpg": ("train", 1),
    }
    assert tags_of(parsed) == {"helmet": 3, "person": 2}
    person = images["img0003.jpg"].annotations[1]
    assert person.shape == "box" and person.label == "person"
    assert person.geometry == pytest.approx({"x": 13.7, "y": 20.2, "width": 31.9, "height": 43.4})
    assert all(image.units == "pixel" and image.file is not None and not image.problems for image in parsed.images)


def assert_same(source, parsed, full_path=True):
    names = {label.id: label.name for label in source.labels}
    assert parsed.problems == []
    assert len(parsed.images) == len(source.records)
    for record, image in zip(source.records, parsed.images):
        assert image.path == record.name(full_path) and image.split == record.split and image.problems == []
        assert (image.width, image.height, image.units) == (record.width, record.height, "pixel")
        assert len(image.annotations) == len(record.annotations)
        for want, got in zip(record.annotations, image.annotations):
            assert (got.label, got.shape, got.attributes, got.text) == (names[want.label_id], want.shape, want.attributes, want.text)
            assert got.score == (want.score if want.source == "prediction" else None)
            assert_close(got.geometry, want.geometry)


@pytest.fixture
def annotated():
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog), dataset_type="detection")
    source.add("a.jpg", box(cat, 1.25, 2, 10, 7.5, attributes={"pose": "left", "n": 2}, text="ocr, with \"quotes\"\nand a line"),
               polygon(dog, (1, 1), (15, 1.5), (8, 11)), split="train", folder="line-3/2024")
    source.add("a.jpg", circle(dog, 8, 6, 3.5), polygon(cat, (0, 0), (16, 12), shape="polyline"),
               polygon(cat, (2, 2), shape="points"), split="validation")
    source.add("c.jpg", ExportAnnotation(dog.id, "box", {"x": 0, "y": 0, "width": 4, "height": 4}, source="prediction", score=0.875),
               tag(cat, text=" leading space"), split="test", folder="park")
    source.add("empty.jpg", split="unassigned")
    return source


def test_our_csv_comes_back_as_it_was_exported(annotated, tmp_path):
    parsed = export_and_parse(annotation_csv, annotated, tmp_path, full_path=True)
    assert_same(annotated, parsed)
    assert [label.name for label in parsed.labels] == ["cat", "dog"]


def test_our_csv_without_full_path_keeps_two_images_of_one_name_apart(annotated, tmp_path):
    parsed = export_and_parse(annotation_csv, annotated, tmp_path)
    assert [image.path for image in parsed.images] == ["a.jpg", "a.jpg", "c.jpg", "empty.jpg"]
    assert_same(annotated, parsed, full_path=False)


def test_the_split_column_wins_over_the_file_name_and_the_image_is_found_beside_the_csv(tmp_path):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics/a.jpg").write_bytes(b"x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other/a.jpg").write_bytes(b"y")
    (tmp_path / "train-list.csv").write_text("path,label,set\npics/a.jpg,cat,TEST\nb.jpg,dog,\n")
    images = by_path(annotation_csv.parse(tmp_path))
    assert images["pics/a.jpg"].split == "test" and images["pics/a.jpg"].file == tmp_path / "pics/a.jpg"
    assert images["b.jpg"].split == "train" and images["b.jpg"].file is None


def test_a_base_name_two_images_share_finds_neither(tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.jpg").write_bytes(b"x")
    (tmp_path / "list.csv").write_text("image_name,label_name\na.jpg,cat\n../../a.jpg,cat\n")
    assert [image.file for image in annotation_csv.parse(tmp_path).images] == [None, None]


OURS = ",".join(annotation_csv.COLUMNS)
BAD_ROWS = {
    "bad number": f"{OURS}\n1,a.jpg,16,12,train,cat,box,one,0,4,4,,,,,,,,human\n",
    "NaN": f"{OURS}\n1,a.jpg,16,12,train,cat,box,nan,0,4,4,,,,,,,,human\n",
    "infinite radius": f"{OURS}\n1,a.jpg,16,12,train,cat,circle,,,,,,4,4,inf,,,,human\n",
    "missing geometry column": "image,label,shape,x_min,y_min\na.jpg,cat,box,1,2\n",
    "short row": f"{OURS}\n1,a.jpg,16,12,train,cat,box\n",
    "long row": "image_name,label_name\na.jpg,cat,extra\n",
    "unknown shape": f"{OURS}\n1,a.jpg,16,12,train,cat,blob,,,,,,,,,,,,human\n",
    "points not JSON": f'{OURS}\n1,a.jpg,16,12,train,cat,polygon,,,,,"[[1,2],",,,,,,,human\n',
    "points nested too deep": f'{OURS}\n1,a.jpg,16,12,train,cat,polygon,,,,,"{"[" * 100000}",,,,,,,human\n',
    "points not pairs": f'{OURS}\n1,a.jpg,16,12,train,cat,polygon,,,,,"[[1,2,3]]",,,,,,,human\n',
    "attributes not an object": f'{OURS}\n1,a.jpg,16,12,train,cat,tag,,,,,,,,,,"[1]",,human\n',
    "bad width": f"{OURS}\n1,a.jpg,wide,12,train,cat,tag,,,,,,,,,,,,human\n",
    "bad score": f"{OURS}\n1,a.jpg,16,12,train,cat,tag,,,,,,,,,,,high,prediction\n",
    "one-hot not 0 or 1": "image_name,dog,cat\na.jpg,1,yes\n",
    "vott bad number": "image,xmin,ymin,xmax,ymax,label\na.jpg,1,2,x,4,cat\n",
    "vott inverted box": "image,xmin,ymin,xmax,ymax,label\na.jpg,5,2,1,4,cat\n",
    "vott no label": "image,xmin,ymin,xmax,ymax,label\na.jpg,1,2,3,4,\n",
}


@pytest.mark.parametrize("text", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_a_bad_row_is_a_problem_of_its_image(tmp_path, text):
    (tmp_path / "list.csv").write_text(text)
    parsed = annotation_csv.parse(tmp_path)
    (image,) = parsed.images
    assert image.path == "a.jpg" and len(image.problems) == 1 and image.problems[0].startswith("line 2: "), image.problems
    assert image.annotations == []


FILE_PROBLEMS = {
    "row with no image": ("image_name,label_name\n,cat\nb.jpg,dog\n", "the row names no image"),
    "unknown split": ("image_name,label_name,split\nb.jpg,dog,holdout\n", "unknown split 'holdout'"),
    "field over the limit": (f'image_name,label_name\nb.jpg,"{"x" * (annotation_csv.MAX_FIELD + 1)}"\nb.jpg,dog\n', "field larger than field limit"),
    "NUL byte": ("image_name,label_name\nb.jpg,d\0g\nb.jpg,dog\n", "NUL"),
    # Past the first buffer the reader decodes: what came before it imports.
    "not UTF-8 midway": (b"image_name,label_name\nb.jpg,dog\n" + b"b.jpg,\n" * 10_000 + b"\xff\xfe,cat\n", "not UTF-8 text"),
}


@pytest.mark.parametrize("text, why", FILE_PROBLEMS.values(), ids=FILE_PROBLEMS.keys())
def test_a_row_that_names_no_readable_image_is_a_problem_of_the_file(tmp_path, text, why):
    path = tmp_path / "list.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    parsed = annotation_csv.parse(tmp_path)
    assert any(where.startswith("list.csv line ") and why in message for where, message in parsed.problems), parsed.problems
    assert [(image.path, [a.label for a in image.annotations]) for image in parsed.images] == [("b.jpg", ["dog"])]


NOT_CSV = {
    "no csv at all": None,
    "empty": b"",
    "no image column": b"index,label,color\n1,cat,#000000\n",
    "a header repeating a column": b"image,image,label\n",
    "image column alone": b"image_name\na.jpg\n",
    "binary": bytes(range(256)) * 4,
    "not UTF-8 header": b"\xff\xfeimage,label\n",
}


@pytest.mark.parametrize("data", NOT_CSV.values(), ids=NOT_CSV.keys())
def test_a_file_in_no_layout_is_not_this_format(tmp_path, data):
    if data is not None:
        (tmp_path / "list.csv").write_bytes(data)
    with pytest.raises(NotThisFormat):
        annotation_csv.parse(tmp_path)


def test_a_file_in_no_layout_beside_readable_ones_is_a_problem(tmp_path):
    (tmp_path / "classes.csv").write_text("index,label,color\n1,cat,#000000\n")
    (tmp_path / "list.csv").write_text("image_name,label_name\na.jpg,cat\n")
    parsed = annotation_csv.parse(tmp_path)
    assert [where for where, _ in parsed.problems] == ["classes.csv"]
    assert len(parsed.images) == 1


def test_a_long_file_is_read_row_by_row(tmp_path):
    with open(tmp_path / "list.csv", "w") as out:
        out.write("image,xmin,ymin,xmax,ymax,label\n")
        for i in range(50_000):
            out.write(f"img{i % 1000}.jpg,1,2,3,4,{'cat' if i % 2 else 'dog'}\n")
    parsed = annotation_csv.parse(tmp_path)
    assert len(parsed.images) == 1000 and tags_of(parsed) == {"cat": 25_000, "dog": 25_000}


def test_labels_with_unclassified_flag_come_back_by_name(tmp_path):
    unsure = ExportLabel(id=30, name="not sure", color="#000000", unclassified=True)
    source = MemorySource(labels=(unsure,), dataset_type="classification")
    source.add("a.jpg", tag(unsure))
    parsed = export_and_parse(annotation_csv, source, tmp_path)
    assert [label.name for label in parsed.labels] == ["not sure"] and parsed.images[0].annotations[0].label == "not sure"
