"""YOLO in the Ultralytics layout: a ZIP with data.yaml, images/<dir>/ and labels/<dir>/.

    data.yaml                   train, val, test (and review) image folders, nc, names (index -> name)
    images/<dir>/<file_name>    the original bytes, stored as they are
    labels/<dir>/<stem>.txt     one line per shape, coordinates normalized to 0-1 of the image

Folders: train -> train, validation -> val, test -> test; unassigned images (no split chosen yet)
go to `unassigned` and review images to `review`, so an import gets every split back. `train` lists
images/train and images/unassigned: an image nobody held out trains. `review` is a key of its own
that Ultralytics ignores: held out for a person, not trained on. Ultralytics requires `val`; with no
validation images it names the training folders. data.yaml has no `path`, so Ultralytics resolves
the folders against the file's own folder (a relative `path` would be taken inside its datasets_dir).

Lines: "class cx cy w h" (yolo_shapes "boxes": a polygon or circle by its bounding box) or
"class x1 y1 x2 y2 ..." (yolo_shapes "polygons": a box by its four corners, a circle by its outline,
services/shapes.py), clipped to the image (Ultralytics refuses a whole image for one value outside
0-1; validation lets shapes poke half a pixel out and circles further). The class is the label's
place in source.labels. Whole-image tags, polylines and points have no YOLO detection or
segmentation line: they are left out and counted in the tally's `skipped`. An image without
shapes gets an empty label file, a background image for Ultralytics.

A label file sits where Ultralytics looks for it: the image's path with its last "/images/" made
"/labels/" and its extension ".txt". Names repeating inside a folder (same stem, without case:
labels are named by the stem) are made unique with the image id (formats.base.UniqueNames).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

import yaml

from formats.base import ExportImage, ExportOptions, ExportSource, Progress, Tally, UniqueNames, copy_original, labels_by_id, zip_entry
from services.shapes import AREA_SHAPES, bbox_in, flatten, outline_in

KEY = "yolo"
TITLE = "YOLO (Ultralytics)"
DATASET_TYPES = ("multilabel", "detection", "segmentation", "anomaly")
OPTIONS = ("full_path", "yolo_shapes")

FOLDERS = {"train": "train", "validation": "val", "test": "test", "unassigned": "unassigned", "review": "review"}
SPLIT_OF_FOLDER = {folder: split for split, folder in FOLDERS.items()}
TRAINED = ("train", "unassigned")
SKIP_REASONS = {
    "tag": "tag: YOLO detection has no whole-image class",
    "polyline": "polyline: YOLO has no open lines",
    "points": "points: YOLO pose needs a fixed keypoint layout per class",
}
# 12 significant digits: an import gets pixels back well within 1e-6 on a 10,000 px image.
DIGITS = ".12g"


def file_name(source: ExportSource, options: ExportOptions) -> str:
    version = f"-{source.version_name}" if source.version_name else ""
    return f"{source.dataset_name}{version}-yolo.zip"


def label_path(image_path: str) -> str:
    """Where Ultralytics looks for an image's labels (its img2label_paths rule)."""
    head, _, tail = ("/" + image_path).rpartition("/images/")
    return (head + "/labels/" + tail).lstrip("/").rsplit(".", 1)[0] + ".txt"


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _line(annotation, image: ExportImage, class_index: int, polygons: bool) -> str | None:
    """The annotation's label line, or None if nothing of it is inside the image."""
    shape, geometry = annotation.shape, annotation.geometry
    if polygons:
        vertices = [(_clip(x), _clip(y)) for x, y in outline_in(shape, geometry, image.width, image.height, "normalized")]
        values = flatten(vertices)
    else:
        x, y, w, h = bbox_in(shape, geometry, image.width, image.height, "normalized")
        x0, y0, x1, y1 = _clip(x), _clip(y), _clip(x + w), _clip(y + h)
        if x1 <= x0 or y1 <= y0:
            return None
        values = [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]
    return " ".join([str(class_index), *(format(v, DIGITS) for v in values)])


def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally:
    labels = labels_by_id(source)
    class_of = {label.id: index for index, label in enumerate(source.labels)}
    polygons = options.yolo_shapes == "polygons"
    tally = Tally()
    names = UniqueNames(by_stem=True)
    folders_used = set()
    with zipfile.ZipFile(out, "w", allowZip64=True) as archive:
        for done, image in enumerate(source.images(), start=1):
            folder = FOLDERS[image.split]
            name = names.claim(folder, image.name(options.full_path), image.id, tally)
            path = f"images/{folder}/{name}"
            lines = []
            for annotation in image.annotations:
                label = labels[annotation.label_id]
                line = _line(annotation, image, class_of[label.id], polygons) if annotation.shape in AREA_SHAPES else None
                if line is None:
                    tally.skip(SKIP_REASONS.get(annotation.shape, f"{annotation.shape}: outside the image"))
                    continue
                lines.append(line)
                tally.add_annotation(label.name, image.split)
            copy_original(archive, path, source, image)
            archive.writestr(zip_entry(label_path(path), True), "".join(line + "\n" for line in lines))
            folders_used.add(folder)
            tally.add_image(image.split)
            progress(done)
        if not folders_used & set(TRAINED):
            # data.yaml must name a train folder: an empty one, as there are no training images.
            empty_train = zip_entry("images/train/", False)
            empty_train.external_attr = 0o40755 << 16 | 0x10  # a directory (MS-DOS flag too)
            archive.writestr(empty_train, b"")
        archive.writestr(zip_entry("data.yaml", True), _data_yaml(source, folders_used))
    return tally


def _data_yaml(source: ExportSource, folders_used: set[str]) -> str:
    def listed(folders):
        paths = [f"images/{folder}" for folder in folders if folder in folders_used]
        return paths[0] if len(paths) == 1 else paths

    # Each key gets a list of its own: one list under two keys would be written as a YAML alias.
    data = {"train": listed(TRAINED) or "images/train", "val": listed(("val",)) or listed(TRAINED) or "images/train"}
    for folder in ("test", "review"):
        if folder in folders_used:
            data[folder] = f"images/{folder}"
    data["nc"] = len(source.labels)
    data["names"] = {index: label.name for index, label in enumerate(source.labels)}
    version = f" {source.version_name}" if source.version_name else ""
    head = (
        f"# {source.dataset_name}{version}, exported by Loupe for Ultralytics YOLO.\n"
        "# No `path`: the folders are relative to this file. `review` is held out, not trained on.\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def count(path: Path, options: ExportOptions) -> Tally:
    polygons = options.yolo_shapes == "polygons"
    tally = Tally()
    with zipfile.ZipFile(path) as archive:
        entries = archive.namelist()
        files = [name for name in entries if not name.endswith("/")]
        data = yaml.safe_load(archive.read("data.yaml"))
        names = data["names"]
        names = [names[index] for index in range(len(names))]  # a list or an index -> name mapping
        if data.get("nc", len(names)) != len(names):
            raise ValueError(f"data.yaml says nc: {data['nc']} but names {len(names)} classes")
        for key in ("train", "val", "test", "review"):
            for folder in [data[key]] if isinstance(data.get(key), str) else data.get(key) or ():
                if not any(name.startswith(folder + "/") for name in entries):
                    raise ValueError(f"data.yaml's {key} folder {folder} is not in the archive")
        under_images = [name for name in files if name.startswith("images/")]
        # A folder named "images" inside a full path puts labels under images/ too (label_path()).
        label_files = {label_path(name) for name in under_images}
        images = [name for name in under_images if name not in label_files]
        labels = {name for name in files if name.startswith("labels/") or name in label_files}
        for image in images:
            folder = image.split("/")[1]
            if folder not in SPLIT_OF_FOLDER:
                raise ValueError(f"{image} is in images/{folder}, which is no split's folder")
            split = SPLIT_OF_FOLDER[folder]
            label_file = label_path(image)
            if label_file not in labels:
                raise ValueError(f"{image} has no label file {label_file}")
            labels.discard(label_file)
            tally.add_image(split)
            for number, line in enumerate(archive.read(label_file).decode().splitlines(), start=1):
                class_index = _check_line(line, polygons, len(names), f"{label_file}:{number}")
                tally.add_annotation(names[class_index], split)
        if labels:
            raise ValueError(f"label files without an image: {sorted(labels)[:5]}")
    return tally


def _check_line(line: str, polygons: bool, class_count: int, where: str) -> int:
    """The class index of a label line, checked: normalized values, the shape's number of them."""
    fields = line.split()
    if not fields or not fields[0].isdigit() or int(fields[0]) >= class_count:
        raise ValueError(f"{where}: the class is not one of data.yaml's {class_count} names: {line!r}")
    values = [float(value) for value in fields[1:]]
    if polygons and (len(values) < 6 or len(values) % 2) or not polygons and len(values) != 4:
        raise ValueError(f"{where}: {len(values)} values is not a {'polygon' if polygons else 'box'}")
    if not all(0.0 <= value <= 1.0 for value in values):
        raise ValueError(f"{where}: a value outside 0-1: {line!r}")
    return int(fields[0])
