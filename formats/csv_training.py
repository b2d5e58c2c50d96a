"""CSV training file in the Google Cloud AutoML / Vertex AI Vision import layout (no header).

    classes (classification, multilabel, anomaly):  SET,path,label      one row per class of the image
    boxes (detection, segmentation):                SET,path,label,x_min,y_min,,,x_max,y_max,,
                                                    one row per region, coordinates relative (0 to 1)
    an image with nothing to write:                 SET,path            (Vertex imports it unlabeled)

SET is TRAIN, VALIDATION, TEST or UNASSIGNED: the image's split (a `review` image is UNASSIGNED),
or, when options.test or options.validation is given, a deterministic draw by those percentages:
exactly round(N x percent / 100) images in each (half up), the rest TRAIN, and the same sets on
every run over the same images (see _Sets; adding or removing images may move others: the price of
exact counts in one pass). A box, polygon or circle becomes its bounding box, clamped to
the image; polylines, points, and in the classes layout any region, have no place in the layout and
are counted as skipped in the report.

`path` is the image's file name, or its path in the dataset with options.full_path. Vertex reads
gs:// URIs, so upload the images (a ZIP export holds them) to a bucket and prefix the second column,
e.g. `sed 's#,#,gs://my-bucket/images/#' file.csv`. Rows of one image follow each other; count()
tells images apart by that, so two images of one name next to each other (bare names of different
folders) read back as one and the export's check fails: use full_path for such datasets.
"""

from __future__ import annotations

import csv
import hashlib
import io
import posixpath
from pathlib import Path
from typing import BinaryIO

from formats.base import ExportOptions, ExportSource, Progress, Tally, labels_by_id
from services.shapes import AREA_SHAPES, bbox

KEY = "csv_training"
TITLE = "CSV training file (Vertex AI / AutoML Vision)"
DATASET_TYPES = ("classification", "multilabel", "detection", "segmentation", "anomaly")
OPTIONS = ("full_path", "test", "validation")

BOX_TYPES = ("detection", "segmentation")
SET_OF_SPLIT = {"train": "TRAIN", "validation": "VALIDATION", "test": "TEST", "unassigned": "UNASSIGNED", "review": "UNASSIGNED"}
SPLIT_OF_SET = {"TRAIN": "train", "VALIDATION": "validation", "TEST": "test", "UNASSIGNED": "unassigned"}
_DRAW_RANGE = 1 << 64
BLOCK = 1 << 20  # characters of rows written to the file at once
BLOCK_ROWS = 500  # rows handed to csv.writer at once: few enough to be freed before the garbage collector promotes them


def file_name(source: ExportSource, options: ExportOptions) -> str:
    version = f"-{source.version_name}" if source.version_name else ""
    return f"{source.dataset_name}{version}-training.csv"


def _share(total: int, percent: int) -> int:
    return (total * percent * 2 + 100) // 200  # round half up, in whole numbers


class _Sets:
    """Draw TEST and VALIDATION images by percentages, exactly, in one pass over the images.

    Selection sampling (Knuth's Algorithm S, for two sets): with `left` images still to place in a
    set and `remaining` images still to come, an image goes there with probability left / remaining,
    its "random" number being its own hash. Every image then has the same chance, the counts come
    out exact, and the same images in the same order always get the same sets.
    """

    def __init__(self, total: int, test: int, validation: int):
        self.remaining = total
        self.left = {"TEST": _share(total, test)}
        self.left["VALIDATION"] = min(_share(total, validation), total - self.left["TEST"])

    def draw(self, storage_key: str) -> str:
        if self.remaining <= 0:  # more images than counted (the dataset changed meanwhile)
            return "TRAIN"
        # The image's hash as a number u in [0, 2^64), compared as u / 2^64 < left / remaining, exactly.
        u = int.from_bytes(hashlib.sha256(storage_key.encode()).digest()[:8], "big")
        chosen, bound = "TRAIN", 0
        for name, left in self.left.items():
            bound += left
            if u * self.remaining < bound * _DRAW_RANGE:
                chosen = name
                self.left[name] -= 1
                break
        self.remaining -= 1
        return chosen


def _relative(value: float, size: int) -> str:
    text = f"{min(max(value / size, 0.0), 1.0):.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _box_line(set_name: str, path: str, name: str, shape: str, geometry: dict, width: int, height: int, tally: Tally) -> tuple | None:
    if shape not in AREA_SHAPES:
        tally.skip(f"{shape}: no bounding box in the Vertex layout")
        return None
    x, y, w, h = bbox(shape, geometry)
    x_min, y_min = _relative(x, width), _relative(y, height)
    x_max, y_max = _relative(x + w, width), _relative(y + h, height)
    if x_min == x_max or y_min == y_max:
        tally.skip("zero-size bounding box")
        return None
    return (set_name, path, name, x_min, y_min, "", "", x_max, y_max, "", "")


def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally:
    names = {label_id: label.name for label_id, label in labels_by_id(source).items()}
    boxes = source.dataset_type in BOX_TYPES
    sets = _Sets(source.count(), options.test, options.validation) if options.test or options.validation else None
    fields = {"image_id", "file_name", "split", "label_id", "shape"}
    full_path = options.full_path
    fields |= {"folder_path"} if full_path else set()
    fields |= {"width", "height", "geometry"} if boxes else set()
    fields |= {"storage_key"} if sets else set()
    tally = Tally()
    # A million images make this loop the export's cost, so it reads source.rows() (flat tuples of
    # the fields it needs, no record per image or annotation), counts per set and per label in
    # plain dicts made beforehand and added to the tally once, and hands rows to csv.writer in
    # lists; the text gathers in a buffer and goes out encoded in blocks (a row at a time through a
    # TextIOWrapper costs more than making it).
    images = dict.fromkeys(SPLIT_OF_SET, 0)  # set -> images
    annotations = {set_name: dict.fromkeys(names.values(), 0) for set_name in SPLIT_OF_SET}  # set -> label -> rows
    text = io.StringIO()
    writer = csv.writer(text)
    lines: list[tuple] = []
    current, set_name, path, in_set, empty, classes, done = None, None, None, None, False, (), 0
    for image_id, file_name, folder, storage_key, width, height, split, label_id, shape, geometry in source.rows(fields):
        if image_id != current:
            if empty:  # the previous image had nothing to write: a row of its own
                lines.append((set_name, path))
            if len(lines) >= BLOCK_ROWS:
                writer.writerows(lines)
                lines.clear()
                if text.tell() > BLOCK:
                    out.write(text.getvalue().encode("utf-8"))
                    text.seek(0)
                    text.truncate()
            set_name = sets.draw(storage_key) if sets else SET_OF_SPLIT[split]
            path = posixpath.join(folder, file_name) if full_path and folder else file_name
            current, empty, classes, in_set = image_id, True, (), annotations[set_name]
            images[set_name] += 1
            done += 1
            progress(done)
        if label_id is None:
            continue
        name = names[label_id]
        if boxes:
            line = _box_line(set_name, path, name, shape, geometry, width, height, tally)
            if line is None:
                continue
            lines.append(line)
        elif shape != "tag":
            tally.skip(f"{shape}: the classification layout has no regions")
            continue
        elif name in classes:  # two labels merged by the tag map into one class
            tally.skip("class repeated on the image")
            continue
        else:
            classes += (name,)
            lines.append((set_name, path, name))
        in_set[name] += 1
        empty = False
    if empty:
        lines.append((set_name, path))
    writer.writerows(lines)
    out.write(text.getvalue().encode("utf-8"))
    for set_name, n in images.items():
        if n:
            tally.images += n
            tally.per_split[SPLIT_OF_SET[set_name]]["images"] += n
    for set_name, per_label in annotations.items():
        for name, n in per_label.items():
            if n:
                tally.annotations += n
                tally.per_label[name] += n
                tally.per_split[SPLIT_OF_SET[set_name]]["annotations"] += n
    return tally


def _check(row: list[str], line: int) -> None:
    if len(row) not in (2, 3, 11) or row[0] not in SPLIT_OF_SET or not row[1]:
        raise ValueError(f"line {line} is not a Vertex AI import row: {row[:3]}")
    if len(row) == 11:
        try:
            x_min, y_min, x_max, y_max = (float(row[i]) for i in (3, 4, 7, 8))
        except ValueError:
            raise ValueError(f"line {line}: the box coordinates are not numbers") from None
        if not (0 <= x_min < x_max <= 1 and 0 <= y_min < y_max <= 1) or any(row[i] for i in (5, 6, 9, 10)):
            raise ValueError(f"line {line}: the box is not x_min,y_min,,,x_max,y_max,, within 0 to 1")


def count(path: Path, options: ExportOptions) -> Tally:
    tally = Tally()
    previous = None
    with open(path, encoding="utf-8", newline="") as rows:
        for line, row in enumerate(csv.reader(rows), start=1):
            _check(row, line)
            split = SPLIT_OF_SET[row[0]]
            # Rows of one image follow each other; only its first row counts it.
            if (row[0], row[1]) != previous:
                previous = (row[0], row[1])
                tally.add_image(split)
            if len(row) > 2:
                tally.add_annotation(row[2], split)
    return tally
