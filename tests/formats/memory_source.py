"""Sources for format tests: an ExportSource over records made in the test (no database), and a
small annotated dataset for the one test per format through the real LiveSource."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from dataclasses import dataclass, field

from core.extensions import db
from core.storage import get_storage
from formats.base import ExportAnnotation, ExportImage, ExportLabel, ExportOptions, Tally, rows_of
from models import Image, Split
from services.annotations import replace_annotations
from services.images import folder_for
from services.labels import create_label
from tests.factories import image_bytes, make_dataset, make_user


@dataclass
class MemorySource:
    """Images and their bytes in memory (the formats.base.ExportSource protocol)."""

    labels: tuple[ExportLabel, ...]
    records: list[ExportImage] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)
    dataset_name: str = "Cats"
    dataset_type: str = "detection"
    version_name: str | None = None

    def add(self, file_name: str, *annotations: ExportAnnotation, size=(16, 12), split="train", folder="", fmt="JPEG", tags=()) -> ExportImage:
        """An image of `size` with distinct bytes, appended in id order."""
        data = image_bytes(size, fmt, seed=len(self.records) + 1)
        key = hashlib.sha256(data).hexdigest()
        self.blobs[key] = data
        image = ExportImage(
            id=100 + len(self.records), file_name=file_name, folder_path=folder, storage_key=key,
            width=size[0], height=size[1], byte_size=len(data), format=fmt.lower(), split=split, state="accepted",
            tags=tuple(tags), annotations=annotations,
        )
        self.records.append(image)
        return image

    def images(self):
        yield from self.records

    def rows(self, fields=()):
        return rows_of(self.records)

    def count(self) -> int:
        return len(self.records)

    def open(self, storage_key: str):
        return io.BytesIO(self.blobs[storage_key])

    def signed_url(self, image: ExportImage, expires_in_s: int) -> str:
        return f"https://loupe.test/originals/{image.storage_key}?expires={expires_in_s}"


def labels(*names: str) -> tuple[ExportLabel, ...]:
    return tuple(ExportLabel(id=10 + i, name=name, color="#3cb44b", position=i) for i, name in enumerate(names))


def box(label: ExportLabel, x, y, w, h, **extra) -> ExportAnnotation:
    return ExportAnnotation(label.id, "box", {"x": x, "y": y, "width": w, "height": h}, **extra)


def polygon(label: ExportLabel, *points, shape="polygon", **extra) -> ExportAnnotation:
    return ExportAnnotation(label.id, shape, {"points": [list(p) for p in points]}, **extra)


def circle(label: ExportLabel, cx, cy, r, **extra) -> ExportAnnotation:
    return ExportAnnotation(label.id, "circle", {"cx": cx, "cy": cy, "r": r}, **extra)


def tag(label: ExportLabel, **extra) -> ExportAnnotation:
    return ExportAnnotation(label.id, "tag", {}, **extra)


def run_export(module, source: MemorySource, tmp_path, **options) -> tuple[Tally, Tally, object]:
    """Export through `module` into a file; (export()'s tally, count()'s tally, the file's path)."""
    chosen = ExportOptions(format=module.KEY, **options)
    path = tmp_path / module.file_name(source, chosen)
    done = []
    with open(path, "wb") as out:
        written = module.export(source, chosen, out, done.append)
    assert done == list(range(1, source.count() + 1))
    counted = module.count(path, chosen)
    assert counted.differences(written) == [], counted.differences(written)
    assert counted.as_dict() | {"skipped": {}, "renamed": 0} == written.as_dict() | {"skipped": {}, "renamed": 0}
    return written, counted, path


def export_and_parse(module, source: MemorySource, tmp_path, **options):
    """Export a one-file format, put the file alone in an upload folder and parse it back."""
    _, _, path = run_export(module, source, tmp_path, **options)
    upload = tmp_path / "upload"
    upload.mkdir()
    shutil.copy(path, upload)
    return module.parse(upload)


def assert_originals(archive: zipfile.ZipFile, source: MemorySource, paths: dict[int, str]) -> None:
    """Every image's bytes in the archive are the stored ones, stored uncompressed."""
    for image in source.records:
        info = archive.getinfo(paths[image.id])
        assert info.compress_type == zipfile.ZIP_STORED
        assert archive.read(info) == source.blobs[image.storage_key]


def annotated_dataset():
    """A detection dataset in the database: three stored images in two splits and a folder, two labels,
    a box, a polygon, a circle, a polyline and an empty image; (dataset, {image id: its bytes})."""
    owner = make_user()
    dataset = make_dataset(owner, name="Birds")
    cat = create_label(dataset, name="cat", default_shape="box")
    dog = create_label(dataset, name="dog", default_shape="polygon")
    originals = {}
    for seed, (name, folder, split, shapes) in enumerate([
        ("a.jpg", "", Split.train, [("box", cat, {"x": 2, "y": 3, "width": 20, "height": 10}),
                                    ("polygon", dog, {"points": [[30, 5], [60, 8], [45, 40]]})]),
        ("a.jpg", "park", Split.validation, [("circle", dog, {"cx": 30, "cy": 24, "r": 12}),
                                             ("polyline", cat, {"points": [[1, 1], [9, 9]]})]),
        ("empty.jpg", "park", Split.validation, []),
    ], start=1):
        data = image_bytes((64, 48), seed=seed)
        stored = get_storage().put_stream(io.BytesIO(data))
        image = Image(dataset_id=dataset.id, file_name=name, folder_id=folder_for(dataset.id, folder) if folder else None,
                      storage_key=stored.key, width=64, height=48, byte_size=stored.size, format="jpeg", split=split)
        db.session.add(image)
        db.session.commit()
        replace_annotations(image, owner, [{"label_id": label.id, "shape": shape, "geometry": geometry} for shape, label, geometry in shapes])
        originals[image.id] = data
    return dataset, originals
