"""ZIP in label folders import: our export back through its annotations.csv for every layout, the
ImageNet-style fixtures counted under the semantics we chose, and broken lists reported."""

import zipfile
from collections import Counter

import pytest

from formats import folders_zip
from formats.base import ExportLabel, NotThisFormat
from tests.formats.memory_source import MemorySource, box, circle, labels, polygon, run_export, tag
from tests.formats.test_import_csv import assert_close
from tests.support import FORMAT_FIXTURES

FIXTURES = FORMAT_FIXTURES


def summary(parsed) -> list[tuple]:
    return [(image.path, image.split, [a.label for a in image.annotations]) for image in parsed.images]


# Our semantics (torchvision's ImageFolder, keeping the root file): the first folder is the class,
# deeper folders stay in the image's path, a file directly at the root has no class.
def test_imagenet_folders_first_folder_is_the_class():
    parsed = folders_zip.parse(FIXTURES / "imagenet_folders")
    # README: Datumaro finds 4 items, 3 labels (label_0, label_1, label_1/label_1_1), 3 labelled, 1
    # unlabelled; ImageFolder 2 classes and 3 samples (the root file ignored). Ours: 4 images, 2 labels,
    # 3 tags (label_1 twice, its nested file included), 1 unlabelled root file.
    assert [label.name for label in parsed.labels] == ["label_0", "label_1"]
    assert summary(parsed) == [
        ("label_0_1.jpg", None, ["label_0"]),
        ("label_0_2.jpg", None, []),
        ("label_1_1/label_1_1.jpg", None, ["label_1"]),
        ("label_1_1.jpg", None, ["label_1"]),
    ]
    assert parsed.images[2].file == FIXTURES / "imagenet_folders/label_1/label_1_1/label_1_1.jpg"
    assert parsed.problems == []


def test_imagenet_subset_folders_give_the_split():
    parsed = folders_zip.parse(FIXTURES / "imagenet_folders_subsets")
    # README: Datumaro 12 items (4 per subset), 9 label annotations, 3 unlabelled, 3 labels. Ours: the
    # same 12 images, 4 per split, 9 tags and 3 unlabelled, but 2 labels (label_1_1 is a folder in label_1).
    assert [label.name for label in parsed.labels] == ["label_0", "label_1"]
    assert Counter(image.split for image in parsed.images) == {"train": 4, "validation": 4, "test": 4}
    assert Counter(a.label for image in parsed.images for a in image.annotations) == {"label_0": 3, "label_1": 6}
    assert sum(not image.annotations for image in parsed.images) == 3
    # The subset folder stays in the path, so the subsets' images (same names) stay twelve images.
    assert {image.path for image in parsed.images} == {
        f"{subset}/{name}" for subset in ("train", "val", "test")
        for name in ("label_0_1.jpg", "label_0_2.jpg", "label_1_1/label_1_1.jpg", "label_1_1.jpg")
    }


def test_an_image_at_the_root_keeps_its_non_ascii_name():
    parsed = folders_zip.parse(FIXTURES / "unicode_filename_image_dir")
    assert summary(parsed) == [("臉書.jpg", None, [])] and parsed.labels == []
    assert parsed.images[0].file == FIXTURES / "unicode_filename_image_dir/臉書.jpg"


def test_class_folders_skip_unclassified_archiver_files_and_report_other_files(tmp_path):
    for name in ("cat/a.jpg", "Unclassified/b.jpg", "__MACOSX/cat/._a.jpg", "cat/.DS_Store", "notes.txt", "train/c.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    parsed = folders_zip.parse(tmp_path)
    # train/ beside cat/ is a class too: subset folders count only when they are all the root holds.
    assert summary(parsed) == [("b.jpg", None, []), ("a.jpg", None, ["cat"]), ("c.jpg", None, ["train"])]
    assert parsed.problems == [("notes.txt", "not an image file: left out")]


def test_no_images_is_not_this_format(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(NotThisFormat):
        folders_zip.parse(tmp_path)


def export_and_parse(source, tmp_path, **options):
    _, _, path = run_export(folders_zip, source, tmp_path, **options)
    upload = tmp_path / "upload"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(upload)
    return folders_zip.parse(upload), upload


def assert_same(source, parsed, shapes=None):
    """Paths, splits, labels and geometry as the records have them; `shapes` maps a shape to the one
    the archive lists it as."""
    names = {label.id: label.name for label in source.labels}
    assert [label.name for label in parsed.labels] == list(names.values())
    assert parsed.problems == []
    for record, image in zip(source.records, parsed.images, strict=True):
        assert (image.path, image.split, image.units, image.problems) == (record.path, record.split, "pixel", [])
        assert image.file is not None
        for want, got in zip(record.annotations, image.annotations, strict=True):
            assert (got.label, got.shape) == (names[want.label_id], want.shape)
            assert_close(got.geometry, want.geometry)


def test_classification_comes_back_without_its_label_folders(tmp_path):
    cat, dog = labels("cat", "dog/big")
    unsure = ExportLabel(id=30, name="not sure", color="#000000", position=2, unclassified=True)
    source = MemorySource(labels=(cat, dog, unsure), dataset_type="classification")
    source.add("a.jpg", tag(cat), split="train")
    source.add("b.jpg", tag(dog), split="validation", folder="line-3/2024")
    source.add("c.jpg", split="test", folder="Masks")
    source.add("d.jpg", tag(unsure), split="train")
    parsed, upload = export_and_parse(source, tmp_path, full_path=True)
    assert_same(source, parsed)
    assert parsed.images[1].file == upload / "dog%2Fbig/line-3/2024/b.jpg"
    assert parsed.labels[0].color == "#3cb44b"


def test_multilabel_comes_back_and_its_masks_are_left_out(tmp_path):
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog), dataset_type="multilabel")
    source.add("a.jpg", tag(cat), tag(dog))
    source.add("b.jpg", tag(dog), polygon(cat, (1, 1), (14, 2), (8, 11)), split="validation", folder="park")
    source.add("c.png", fmt="PNG", split="test")
    parsed, upload = export_and_parse(source, tmp_path, full_path=True)
    assert (upload / "park/Masks/b.png").is_file()
    assert_same(source, parsed)


@pytest.mark.parametrize("dataset_type", ["detection", "segmentation"])
def test_shapes_come_back_from_annotations_csv(tmp_path, dataset_type):
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog), dataset_type=dataset_type)
    source.add("a.jpg", box(cat, 1.25, 2, 10, 7.5), polygon(dog, (1, 1), (15, 1.5), (8, 11)), circle(dog, 8, 6, 3.5), split="train")
    source.add("b.jpg", polygon(cat, (0, 0), (16, 12), shape="polyline"), polygon(cat, (2, 2), shape="points"), folder="cat", split="test")
    source.add("c.jpg", split="unassigned", folder="Unclassified")
    parsed, _ = export_and_parse(source, tmp_path, full_path=True)
    assert_same(source, parsed)


def test_images_without_full_path_come_back_by_name(tmp_path):
    cat, = labels("cat")
    source = MemorySource(labels=(cat,), dataset_type="classification")
    source.add("a.jpg", tag(cat), folder="x")
    source.add("a.jpg", tag(cat), folder="y")
    parsed, _ = export_and_parse(source, tmp_path)
    # The second a.jpg was renamed in the archive to keep both; that name is what the file gives.
    assert summary(parsed) == [("a.jpg", "train", ["cat"]), ("a~101.jpg", "train", ["cat"])]


def listed(tmp_path, rows: str, classes="index,label,color\n1,cat,#3cb44b\n"):
    (tmp_path / "annotations.csv").write_text(",".join(folders_zip.COLUMNS) + "\n" + rows)
    (tmp_path / "classes.csv").write_text(classes)
    return folders_zip.parse(tmp_path)


BAD_ROWS = {
    "bad number": "a.jpg,train,cat,box,1,2,x,4,\n",
    "NaN": "a.jpg,train,cat,box,1,2,nan,4,\n",
    "unknown shape": "a.jpg,train,cat,blob,,,,,\n",
    "points not JSON": 'a.jpg,train,cat,polygon,,,,,"[[1,"\n',
    "points nested too deep": f'a.jpg,train,cat,polygon,,,,,"{"[" * 100000}"\n',
}


@pytest.mark.parametrize("row", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_a_bad_row_is_a_problem_of_its_image(tmp_path, row):
    (image,) = listed(tmp_path, "a.jpg,train,cat,tag,,,,,\n" + row).images
    assert len(image.problems) == 1 and image.problems[0].startswith("line 3: "), image.problems
    assert [a.shape for a in image.annotations] == ["tag"]


FILE_PROBLEMS = {
    "short row": ("a.jpg,train\nb.jpg,train,,,,,,,\n", "classes", "annotations.csv line 2"),
    "no image": (",train,cat,tag,,,,,\nb.jpg,train,,,,,,,\n", "classes", "annotations.csv line 2"),
    "unknown split": ("b.jpg,holdout,,,,,,,\n", "classes", "annotations.csv line 2"),
    "class without a name": ("b.jpg,train,,,,,,,\n", "index,label,color\n1,,#000000\n", "classes.csv line 2"),
    "bad color": ("b.jpg,train,,,,,,,\n", "index,label,color\n1,cat,red\n", "classes.csv line 2"),
}


@pytest.mark.parametrize("rows, classes, where", FILE_PROBLEMS.values(), ids=FILE_PROBLEMS.keys())
def test_a_row_naming_no_image_or_class_is_a_problem_of_the_file(tmp_path, rows, classes, where):
    parsed = listed(tmp_path, rows, **({} if classes == "classes" else {"classes": classes}))
    assert [w for w, _ in parsed.problems] == [where], parsed.problems
    assert [image.path for image in parsed.images] == ["b.jpg"]


def test_an_annotations_csv_of_other_columns_is_not_this_format(tmp_path):
    (tmp_path / "annotations.csv").write_text("image_name,label_name\na.jpg,cat\n")
    (tmp_path / "classes.csv").write_text("index,label,color\n")
    with pytest.raises(NotThisFormat):
        folders_zip.parse(tmp_path)


def test_an_image_the_list_misses_comes_without_annotations_and_is_reported(tmp_path):
    (tmp_path / "b.jpg").write_bytes(b"x")
    parsed = listed(tmp_path, "a.jpg,train,cat,tag,,,,,\n")
    assert summary(parsed) == [("a.jpg", "train", ["cat"]), ("b.jpg", None, [])]
    assert [w for w, _ in parsed.problems] == ["b.jpg"]
    assert parsed.images[0].file is None and parsed.images[1].file == tmp_path / "b.jpg"
