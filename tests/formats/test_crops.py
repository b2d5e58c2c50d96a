"""Crops ZIP: WebP crops of one label's regions by bounding box, clamped, in oriented pixels,
named deterministically, listed in crops.csv and counted back from the archive."""

import csv
import hashlib
import io
import zipfile

import pytest
from PIL import Image as PILImage
from PIL import ImageOps

from core.errors import Invalid
from formats import EXPORTS, crops
from formats.base import ExportImage, ExportOptions
from services import crops as crop_service
from services.annotations import replace_annotations
from services.export_source import ExportFilter, LiveSource
from services.imaging import ImageRejected
from services.labels import create_label
from tests.factories import image_bytes, imported_image, make_dataset, make_user
from tests.formats.memory_source import MemorySource, box, circle, labels, polygon, run_export, tag


def webp_size(data: bytes) -> tuple[int, int]:
    image = PILImage.open(io.BytesIO(data))
    assert image.format == "WEBP"
    return image.size


def manifest(archive: zipfile.ZipFile) -> list[dict]:
    return list(csv.DictReader(io.TextIOWrapper(archive.open("crops.csv"), encoding="utf-8", newline="")))


@pytest.fixture
def detection():
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog))
    source.add("a.jpg", box(cat, 2, 3, 5, 4), polygon(cat, (1.5, 1.2), (8.2, 1.5), (4, 9.7)), box(dog, 0, 0, 4, 4), size=(16, 12))
    source.add("b.png", circle(cat, 14, 2, 4), polygon(cat, (1, 1), (5, 5), shape="polyline"), size=(16, 12), fmt="PNG", split="test")
    source.add("a.jpg", box(cat, 0, 0, 16, 12), size=(16, 12), folder="other")  # the same bare name as the first
    source.add("none.jpg", box(dog, 1, 1, 2, 2), size=(16, 12))
    return source, cat


def test_crops_are_webp_of_their_bounding_box_named_per_image(detection, tmp_path):
    source, cat = detection

    written, counted, path = run_export(crops, source, tmp_path, crop_label_id=cat.id)

    assert EXPORTS["crops"] is crops
    assert path.name == "Cats-crops-cat.zip"
    with zipfile.ZipFile(path) as archive:
        sizes = {name: webp_size(archive.read(name)) for name in archive.namelist() if name.endswith(".webp")}
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
        listed = manifest(archive)
    # box 5x4; polygon 1.5..8.2 x 1.2..9.7 -> pixels 1..9 x 1..10; circle 10..18 x -2..6 clamped to 10..16 x 0..6.
    assert sizes == {"a_0.webp": (5, 4), "a_1.webp": (8, 9), "b_0.webp": (6, 6), "a-102_0.webp": (16, 12)}
    assert [(row["crop"], row["image_id"], row["split"], row["x"], row["y"], row["width"], row["height"]) for row in listed] == [
        ("a_0.webp", "100", "train", "2", "3", "5", "4"), ("a_1.webp", "100", "train", "1", "1", "8", "9"),
        ("b_0.webp", "101", "test", "10", "0", "6", "6"), ("a-102_0.webp", "102", "train", "0", "0", "16", "12"),
        ("", "103", "train", "", "", "", ""),  # no crop of this label, still listed
    ]
    assert written.images == 4 and written.annotations == 4 and written.per_label == {"cat": 4}
    assert written.skipped == {"annotation of another label": 2, "polyline: no area to crop": 1}
    assert counted.per_split == {"train": {"images": 3, "annotations": 3}, "test": {"images": 1, "annotations": 1}}


def test_full_path_names_crops_by_the_images_folders(detection, tmp_path):
    source, cat = detection
    _, _, path = run_export(crops, source, tmp_path, crop_label_id=cat.id, full_path=True)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["a_0.webp", "a_1.webp", "b_0.webp", "crops.csv", "other/a_0.webp"]


def test_the_crop_holds_the_pixels_of_its_box(tmp_path):
    (cat,) = labels("cat")
    source = MemorySource(labels=(cat,))
    picture = PILImage.new("RGB", (16, 12), (0, 0, 255))
    picture.paste((255, 0, 0), (8, 0, 16, 6))  # a red top-right quarter
    data = io.BytesIO()
    picture.save(data, "PNG")
    add_record(source, data.getvalue(), "quarters.png", 16, 12, (box(cat, 8, 0, 8, 6), box(cat, 0, 6, 8, 6)))

    _, _, path = run_export(crops, source, tmp_path, crop_label_id=cat.id)

    with zipfile.ZipFile(path) as archive:
        red, blue = (PILImage.open(io.BytesIO(archive.read(f"quarters_{i}.webp"))).convert("RGB") for i in (0, 1))
    assert red.size == blue.size == (8, 6)
    assert all(abs(a - b) <= 8 for a, b in zip(red.getpixel((4, 3)), (255, 0, 0)))
    assert all(abs(a - b) <= 8 for a, b in zip(blue.getpixel((4, 3)), (0, 0, 255)))


def add_record(source: MemorySource, data: bytes, name: str, width: int, height: int, annotations) -> ExportImage:
    key = hashlib.sha256(data).hexdigest()
    source.blobs[key] = data
    record = ExportImage(id=100 + len(source.records), file_name=name, folder_path="", storage_key=key, width=width, height=height,
                         byte_size=len(data), format="jpeg", split="train", state="accepted", annotations=tuple(annotations))
    source.records.append(record)
    return record


def test_geometry_is_in_oriented_pixels(tmp_path):
    """A JPEG stored 12 wide and 16 high with EXIF orientation 6 shows 16 x 12; boxes are drawn on what shows."""
    (cat,) = labels("cat")
    raw = PILImage.new("RGB", (12, 16), (0, 0, 255))
    raw.paste((255, 0, 0), (0, 0, 12, 8))  # the stored top half: the displayed right half once rotated
    exif = PILImage.Exif()
    exif[0x0112] = 6
    stored = io.BytesIO()
    raw.save(stored, "JPEG", quality=95, exif=exif.tobytes())
    shown = ImageOps.exif_transpose(PILImage.open(io.BytesIO(stored.getvalue())))
    assert shown.size == (16, 12)
    source = MemorySource(labels=(cat,))
    add_record(source, stored.getvalue(), "turned.jpg", 16, 12, (box(cat, 9, 2, 6, 8), box(cat, 1, 2, 6, 8)))

    _, _, path = run_export(crops, source, tmp_path, crop_label_id=cat.id)

    with zipfile.ZipFile(path) as archive:
        right, left = (PILImage.open(io.BytesIO(archive.read(f"turned_{i}.webp"))).convert("RGB") for i in (0, 1))
    assert right.size == left.size == (6, 8)
    for crop, (x, y) in ((right, (9, 2)), (left, (1, 2))):
        expected = shown.crop((x, y, x + 6, y + 8))
        assert all(abs(a - b) <= 24 for a, b in zip(crop.getpixel((3, 4)), expected.getpixel((3, 4))))
    assert right.getpixel((3, 4))[0] > 200 and left.getpixel((3, 4))[2] > 200


def test_an_image_that_cannot_be_decoded_is_listed_and_its_crops_counted_as_skipped(tmp_path):
    (cat,) = labels("cat")
    source = MemorySource(labels=(cat,))
    add_record(source, b"not an image at all", "broken.jpg", 16, 12, (box(cat, 1, 1, 4, 4), box(cat, 2, 2, 4, 4)))
    source.add("fine.jpg", box(cat, 1, 1, 4, 4), tag(cat))

    written, _, path = run_export(crops, source, tmp_path, crop_label_id=cat.id)

    with zipfile.ZipFile(path) as archive:
        assert [row["crop"] for row in manifest(archive)] == ["", "fine_0.webp"]
    assert written.images == 2 and written.annotations == 1
    assert written.skipped == {"image cannot be decoded": 2, "tag: no area to crop": 1}


def test_the_decoder_keeps_its_pixel_limit():
    with pytest.raises(ImageRejected, match="decompression bomb"):
        crop_service.render_crops(io.BytesIO(image_bytes((64, 48))), [crop_service.CropBox(0, 0, 4, 4)], max_pixels=1000)


def test_a_label_that_is_not_in_the_export_is_refused(detection):
    source, _ = detection
    with pytest.raises(Invalid, match="crop_label_id"):
        crops.file_name(source, ExportOptions(format="crops", crop_label_id=999))


@pytest.mark.parametrize("archive_entries, problem", [
    ({"crops.csv": "crop,image_id,image,split,label,x,y,width,height\r\nmissing_0.webp,1,a.jpg,train,cat,0,0,1,1\r\n"}, "does not hold"),
    ({"crops.csv": "crop,image_id,image,split,label,x,y,width,height\r\n", "stray_0.webp": "x"}, "does not list"),
    ({"crops.csv": "name,label\r\n"}, "header"),
])
def test_count_refuses_an_archive_whose_manifest_and_crops_disagree(tmp_path, archive_entries, problem):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in archive_entries.items():
            archive.writestr(name, text)
    with pytest.raises(ValueError, match=problem):
        crops.count(path, ExportOptions(format="crops"))


def test_live_dataset_crops_match_the_database(app_ctx, tmp_path):
    owner = make_user()
    dataset = make_dataset(owner, type="detection")
    cat = create_label(dataset, name="cat", default_shape="box")
    dog = create_label(dataset, name="dog", default_shape="box")
    first = imported_image(dataset, "a.jpg", image_bytes((16, 12), seed=1), owner=owner)
    second = imported_image(dataset, "b.jpg", image_bytes((16, 12), seed=2), owner=owner)
    replace_annotations(first, owner, [
        {"label_id": cat.id, "shape": "box", "geometry": {"x": 1, "y": 2, "width": 6, "height": 5}},
        {"label_id": dog.id, "shape": "box", "geometry": {"x": 0, "y": 0, "width": 3, "height": 3}},
        {"label_id": cat.id, "shape": "polygon", "geometry": {"points": [[2, 2], [10, 3], [6, 11]]}},
    ])
    replace_annotations(second, owner, [{"label_id": dog.id, "shape": "box", "geometry": {"x": 1, "y": 1, "width": 4, "height": 4}}])

    source = LiveSource(dataset, ExportFilter(label_ids=(cat.id,)))
    options = ExportOptions(format="crops", crop_label_id=cat.id)
    path = tmp_path / crops.file_name(source, options)
    with open(path, "wb") as out:
        written = crops.export(source, options, out, lambda done: None)

    assert crops.count(path, options).differences(written) == []
    with zipfile.ZipFile(path) as archive:
        assert {name: webp_size(archive.read(name)) for name in archive.namelist() if name != "crops.csv"} == {"a_0.webp": (6, 5), "a_1.webp": (8, 9)}
    assert written.images == source.count() == 1 and written.per_label == {"cat": 2} and written.skipped == {}
