"""COCO instances: categories, images and their annotations, loadable by pycocotools' COCO().

Layout. With images (the default), a ZIP in CVAT's COCO layout, one file per split present:
    annotations/instances_<split>.json     (train, validation, test, unassigned, review)
    images/<split>/<file_name>             the original bytes, stored as they are
Without images, one instances JSON holding every split.

What goes where:
- images: `id` is Loupe's image id; `file_name` bare or with its folder path (the full_path
  option), made unique inside its split (formats.base.UniqueNames); and two Loupe keys COCO
  readers ignore: `split`, and `classes`, the whole-image classes (tag annotations), as
  [{"category_id", "attributes", "score"?, "text"?}], since COCO instances have nowhere for them.
  Free-form image tags, when there are any, are in `tags`.
- categories: the labels in display order, ids from 1.
- annotations: boxes, polygons and circles, with `bbox` [x, y, width, height], `area`, `iscrowd` 0
  and `segmentation` [[x1, y1, x2, y2, ...]]. A box's segmentation is its four corners, because
  annToMask() fails on an empty one, and a circle's is its outline (services/shapes.py); `shape`
  (box, polygon, circle) says what was drawn, so an import gets the box or circle back from `bbox`.
  `attributes` always; `score` for predictions; `text` where the label asks for it. Polylines and
  points enclose nothing and COCO keypoints need a fixed skeleton per category, so they are left out
  and counted in the tally's `skipped`.
- coordinates "percent": bbox and segmentation in percent (0-100) of the image's width and height,
  area in percent squared; width and height stay in pixels. Masks need pixel coordinates.

Memory stays flat in the number of images: each split's images and annotations arrays go to two
temporary files as the images stream by (the image bytes go straight into the ZIP), and the split's
JSON is put together from them at the end, one pass over source.images().
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO, TextIO

from formats.base import (
    SPLITS, ExportImage, ExportOptions, ExportSource, Progress, Tally, UniqueNames, copy_original, labels_by_id, zip_entry,
)
from services.shapes import AREA_SHAPES, area_in, bbox_in, flatten, outline_in

KEY = "coco"
TITLE = "COCO instances"
DATASET_TYPES = ("classification", "multilabel", "detection", "segmentation", "anomaly")
OPTIONS = ("coordinates", "full_path", "include_images")

SKIP_REASONS = {
    "polyline": "polyline: COCO instances have no open lines",
    "points": "points: COCO keypoints need a fixed skeleton per category",
}
JSON_ONLY_SPLIT = "default"  # the one file without images holds every split


def file_name(source: ExportSource, options: ExportOptions) -> str:
    version = f"-{source.version_name}" if source.version_name else ""
    return f"{source.dataset_name}{version}-coco.{'zip' if options.include_images else 'json'}"


# One encoder made once: json.dumps() builds a new one per call, a third of the time at 500,000 boxes.
# allow_nan=False: a NaN in stored geometry would make the file unreadable by strict parsers.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
IMAGES_OPEN = ',"images":[\n'
ANNOTATIONS_OPEN = '],"annotations":[\n'
CLOSE = "]}\n"


class _Instances:
    """One instances JSON in the making: its images and annotations arrays in temporary files.

    The JSON has one line for the head (info, licenses, categories), then one line per image and
    one per image's annotations, so that count() reads it a line at a time: a whole-document
    json.load() of 500,000 boxes takes nine times the file's size in memory. An image's annotations
    are encoded in one call, as the encoder's set-up costs as much as a box.
    """

    def __init__(self):
        self.images = tempfile.TemporaryFile()
        self.annotations = tempfile.TemporaryFile()
        self.counts = {"images": 0, "annotations": 0}

    def _add(self, part: str, line: str) -> None:
        getattr(self, part).write(((",\n" if self.counts[part] else "") + line).encode())
        self.counts[part] += 1

    def add_image(self, record: dict) -> None:
        self._add("images", _dumps(record))

    def add_annotations(self, records: list[dict]) -> None:
        """One image's annotations, on one line."""
        self._add("annotations", _dumps(records)[1:-1])

    def write(self, out: BinaryIO, head: dict) -> None:
        """The whole JSON: the head's keys, then the images and annotations arrays."""
        out.write((_dumps(head)[:-1] + IMAGES_OPEN).encode())
        for part, closing in (("images", ANNOTATIONS_OPEN), ("annotations", CLOSE)):
            file = getattr(self, part)
            file.seek(0)
            shutil.copyfileobj(file, out, 1 << 20)
            out.write((("\n" if self.counts[part] else "") + closing).encode())

    def close(self) -> None:
        self.images.close()
        self.annotations.close()


def _annotation_record(annotation, image: ExportImage, category_id: int, coordinates: str, annotation_id: int) -> dict:
    shape, geometry = annotation.shape, annotation.geometry
    record = {
        "id": annotation_id, "image_id": image.id, "category_id": category_id, "shape": shape,
        "bbox": list(bbox_in(shape, geometry, image.width, image.height, coordinates)),
        "area": area_in(shape, geometry, image.width, image.height, coordinates), "iscrowd": 0,
        "segmentation": [flatten(outline_in(shape, geometry, image.width, image.height, coordinates))],
        "attributes": annotation.attributes,
    }
    return _with_extras(record, annotation)


def _with_extras(record: dict, annotation) -> dict:
    if annotation.score is not None:
        record["score"] = annotation.score
    if annotation.text is not None:
        record["text"] = annotation.text
    return record


def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally:
    labels = labels_by_id(source)
    category_of = {label.id: position for position, label in enumerate(source.labels, start=1)}
    tally = Tally()
    names = UniqueNames()
    archive = zipfile.ZipFile(out, "w", allowZip64=True) if options.include_images else None
    parts: dict[str, _Instances] = {} if archive else {JSON_ONLY_SPLIT: _Instances()}
    try:
        annotation_id = 0
        for done, image in enumerate(source.images(), start=1):
            part_key = image.split if archive else JSON_ONLY_SPLIT
            if part_key not in parts:
                parts[part_key] = _Instances()
            part = parts[part_key]
            name = names.claim(part_key, image.name(options.full_path), image.id, tally)
            record = {"id": image.id, "file_name": name, "width": image.width, "height": image.height, "split": image.split}
            classes, annotations = [], []
            for annotation in image.annotations:
                label = labels[annotation.label_id]
                if annotation.shape == "tag":
                    classes.append(_with_extras({"category_id": category_of[label.id], "attributes": annotation.attributes}, annotation))
                elif annotation.shape in AREA_SHAPES:
                    annotation_id += 1
                    annotations.append(_annotation_record(annotation, image, category_of[label.id], options.coordinates, annotation_id))
                else:
                    tally.skip(SKIP_REASONS[annotation.shape])
                    continue
                tally.add_annotation(label.name, image.split)
            if annotations:
                part.add_annotations(annotations)
            if classes:
                record["classes"] = classes
            if image.tags:
                record["tags"] = list(image.tags)
            part.add_image(record)
            tally.add_image(image.split)
            if archive:
                copy_original(archive, f"images/{image.split}/{name}", source, image)
            progress(done)
        head = {
            "info": {"description": source.dataset_name, "version": source.version_name or "live", "contributor": "Loupe"},
            "licenses": [],
            "categories": [{"id": category_of[label.id], "name": label.name, "supercategory": ""} for label in source.labels],
        }
        if archive is None:
            parts[JSON_ONLY_SPLIT].write(out, head)
        else:
            for split in sorted(parts, key=SPLITS.index):
                # force_zip64: the JSON's size is not known before it is written, and may pass 2 GiB.
                with archive.open(zip_entry(f"annotations/instances_{split}.json", True), "w", force_zip64=True) as entry:
                    parts[split].write(entry, head)
    finally:
        for part in parts.values():
            part.close()
        if archive:
            archive.close()
    return tally


def count(path: Path, options: ExportOptions) -> Tally:
    tally = Tally()
    if not options.include_images:
        with open(path, encoding="utf-8") as lines:
            _count_instances(lines, None, tally)
        return tally
    with zipfile.ZipFile(path) as archive:
        files = set(archive.namelist())
        images = {name for name in files if name.startswith("images/") and not name.endswith("/")}
        listed = set()
        for name in sorted(files):
            if name.startswith("annotations/instances_") and name.endswith(".json"):
                split = name.removeprefix("annotations/instances_").removesuffix(".json")
                with io.TextIOWrapper(archive.open(name), encoding="utf-8") as lines:
                    listed |= _count_instances(lines, split, tally)
        if listed != images:
            missing, unlisted = sorted(listed - images), sorted(images - listed)
            raise ValueError(f"the COCO archive's images and its instances files differ: missing {missing[:5]}, not listed {unlisted[:5]}")
    return tally


def _count_instances(lines: TextIO, split: str | None, tally: Tally) -> set[str]:
    """Count one instances file, on the layout _Instances writes, into the tally; the image paths
    it names in the archive."""
    head = next(lines, "")
    if not head.endswith(IMAGES_OPEN):
        raise ValueError("not a Loupe COCO export: the first line does not open the images list")
    categories = {category["id"]: category["name"] for category in json.loads(head.removesuffix(IMAGES_OPEN) + "}")["categories"]}
    split_of: dict[int, str] = {}
    paths = set()
    section = "images"
    for line in lines:
        if line in (ANNOTATIONS_OPEN, CLOSE):
            if (section, line) not in (("images", ANNOTATIONS_OPEN), ("annotations", CLOSE)):
                raise ValueError(f"not a Loupe COCO export: {line.strip()!r} out of place")
            section = "ended" if line == CLOSE else "annotations"
            continue
        if section == "ended":
            raise ValueError("not a Loupe COCO export: text after the end of the annotations list")
        line = line.rstrip("\n").removesuffix(",")
        if section == "images":
            record = json.loads(line)
            image_split = record["split"]
            if split is not None and image_split != split:
                raise ValueError(f"image {record['id']} of split {image_split} is in instances_{split}.json")
            if record["id"] in split_of:
                raise ValueError(f"the COCO file lists image {record['id']} twice")
            split_of[record["id"]] = image_split
            paths.add(f"images/{image_split}/{record['file_name']}")
            tally.add_image(image_split)
            for tag in record.get("classes", ()):
                tally.add_annotation(categories[tag["category_id"]], image_split)
        else:
            for record in json.loads(f"[{line}]"):
                tally.add_annotation(categories[record["category_id"]], split_of[record["image_id"]])
    if section != "ended":
        raise ValueError("the COCO file ends before its annotations list does (a partial file)")
    return paths
