"""ZIP of the original images in label folders, laid out by dataset type (SPEC section 8).

    classification, anomaly   <Label>/<image>; Unclassified/<image> for an image with no class or
                              with the label flagged `unclassified`; anomaly regions as masks in
                              <Label>/Masks/ next to the images.
    multilabel, segmentation  the images at the root (an image of several classes belongs in no one
                              folder, and a copy per class would multiply the archive), their masks
                              in Masks/ beside them.
    detection                 the images at the root: boxes, lines and points are listed in
                              annotations.csv, not foldered by an arbitrary "first" label.

Every layout also has, at the root:
    annotations.csv  image (its path in the ZIP), split, label, shape, x_min, y_min, x_max, y_max,
                     points: one row per annotation in the export's coordinates (a box and a circle
                     are their bounding box, polygons, lines and points their `points` as JSON),
                     and one row with no label for an image with none, so every image's split is
                     in it. Splits are not folders: SPEC's layouts have none.
    classes.csv      index, label, color: index is the label's value in a class mask.
A mask pair per image with regions: Masks/<stem>.png (class mask) and Masks/Objects/<stem>.png
(object mask), see formats/masks.py; so image stems are unique per folder.

With full_path the dataset's folders sit inside the label folder (or the root). Names that are
unsafe or reserved as a folder or file name are escaped, deterministically and reversibly (a
label's folder decodes back to its name, so count() reads labels from the layout).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import posixpath
import re
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO, TextIO
from urllib.parse import unquote

from formats.base import ExportImage, ExportOptions, ExportSource, Progress, Tally, UniqueNames, copy_original, labels_by_id, zip_entry
from formats.masks import draw, label_values, png_bytes, regions
from services.shapes import AREA_SHAPES, POINT_SHAPES, bbox_in, convert

KEY = "zip"
TITLE = "ZIP of images in label folders"
DATASET_TYPES = ("classification", "multilabel", "detection", "segmentation", "anomaly")
OPTIONS = ("coordinates", "full_path")

FOLDER_TYPES = ("classification", "anomaly")  # the types whose images sit in their class's folder
MASK_TYPES = ("multilabel", "segmentation", "anomaly")  # the types whose regions ship as masks
UNCLASSIFIED = "Unclassified"
MASKS = "Masks"
OBJECTS = "Objects"
ANNOTATIONS_CSV = "annotations.csv"
CLASSES_CSV = "classes.csv"
COLUMNS = ("image", "split", "label", "shape", "x_min", "y_min", "x_max", "y_max", "points")
# Names no label, folder or file of the dataset may take as they are (compared case-insensitively,
# as Windows and macOS compare them when the archive is unpacked).
RESERVED = frozenset(name.lower() for name in (UNCLASSIFIED, MASKS, ANNOTATIONS_CSV, CLASSES_CSV))
COPY_CHUNK = 1 << 20

# What a name may not hold: path separators, the characters Windows refuses, control and
# bidirectional characters, and a "%" that would read as an escape.
_UNSAFE = re.compile('[/\\\\<>:"|?*\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|%(?=[0-9A-Fa-f]{2})')
_TRAILING = re.compile(r"[. ]+$")  # Windows drops trailing dots and spaces ("." and ".." among them)
_WINDOWS_DEVICES = re.compile(r"(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?", re.IGNORECASE)


def _escape(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


def safe_segment(name: str) -> str:
    """The name as one path segment: unsafe characters %-escaped, a reserved name's first character
    escaped. Distinct names stay distinct, and urllib.parse.unquote() gives the name back."""
    escaped = _TRAILING.sub(lambda m: _escape(m.group()), _UNSAFE.sub(lambda m: _escape(m.group()), name))
    if escaped.lower() in RESERVED or _WINDOWS_DEVICES.fullmatch(escaped):
        escaped = _escape(escaped[0]) + escaped[1:]
    return escaped


def number(value: float) -> str:
    """A coordinate as text: whole numbers without a fraction, others in full (repr round-trips)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def dataset_folders(image: ExportImage, options: ExportOptions) -> list[str]:
    """The image's dataset folders as safe segments, when the export keeps them (full_path)."""
    if not options.full_path:
        return []
    return [safe_segment(part) for part in image.folder_path.split("/") if part]


class Archive(zipfile.ZipFile):
    """A ZIP being written, with the dataset type in its comment: what count() must know that the
    layout does not say, where any unzip tool shows it and no name of the layout has to give way."""

    def __init__(self, out: BinaryIO, dataset_type: str):
        super().__init__(out, "w", zipfile.ZIP_STORED)
        self.comment = json.dumps({"dataset_type": dataset_type}).encode()

    def add_spooled(self, name: str, spooled: TextIO) -> None:
        spooled.seek(0)
        with self.open(zip_entry(name, True), "w", force_zip64=True) as member:
            for chunk in iter(lambda: spooled.read(COPY_CHUNK), ""):
                member.write(chunk.encode())


def spool() -> TextIO:
    """A temporary file for lines written while the images stream (a ZIP takes one entry at a time)."""
    return tempfile.TemporaryFile("w+", encoding="utf-8", newline="")


def file_name(source: ExportSource, options: ExportOptions) -> str:
    version = f"-{source.version_name}" if source.version_name else ""
    return f"{source.dataset_name}{version}-folders.zip"


def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally:
    tally = Tally()
    labels = labels_by_id(source)
    values = label_values(source)
    label_folders = {label.id: UNCLASSIFIED if label.unclassified else safe_segment(label.name) for label in source.labels}
    in_folders = source.dataset_type in FOLDER_TYPES
    masked = source.dataset_type in MASK_TYPES
    names = UniqueNames(by_stem=True)
    with Archive(out, source.dataset_type) as archive, spool() as rows_file:
        rows = csv.writer(rows_file)
        rows.writerow(COLUMNS)
        for done, image in enumerate(source.images(), start=1):
            written, top = list(image.annotations), []
            if in_folders:
                tags = [a for a in written if a.shape == "tag"]
                if len(tags) > 1:
                    written = [a for a in written if a.shape != "tag" or a is tags[0]]
                    tally.skip("a second class on a single-class image", len(tags) - 1)
                top = [label_folders[tags[0].label_id] if tags else UNCLASSIFIED]
            folder = "/".join(top + dataset_folders(image, options))
            path = posixpath.join(folder, names.claim(folder, safe_segment(image.file_name), image.id, tally))
            copy_original(archive, path, source, image)
            shown = regions(image) if masked else []
            if shown:
                for name, drawn in zip(mask_names(path), draw(image, shown, values)):
                    archive.writestr(zip_entry(name, False), png_bytes(drawn))
            tally.add_image(image.split)
            if not written:
                rows.writerow((path, image.split) + ("",) * (len(COLUMNS) - 2))
            for annotation in written:
                name = labels[annotation.label_id].name
                rows.writerow(_row(path, image, annotation, name, options.coordinates))
                tally.add_annotation(name, image.split)
            progress(done)
        archive.add_spooled(ANNOTATIONS_CSV, rows_file)
        classes = io.StringIO(newline="")
        writer = csv.writer(classes)
        writer.writerow(("index", "label", "color"))
        writer.writerows((values[label.id], label.name, label.color) for label in source.labels)
        archive.writestr(zip_entry(CLASSES_CSV, True), classes.getvalue())
    return tally


def _row(path: str, image: ExportImage, annotation, label_name: str, coordinates: str) -> tuple:
    box = bbox_in(annotation.shape, annotation.geometry, image.width, image.height, coordinates)
    corners = ("",) * 4 if box is None else tuple(map(number, (box[0], box[1], box[0] + box[2], box[1] + box[3])))
    points = ""
    if annotation.shape in POINT_SHAPES:
        points = json.dumps(convert(annotation.shape, annotation.geometry, image.width, image.height, coordinates)["points"])
    return (path, image.split, label_name, annotation.shape, *corners, points)


def count(path: Path, options: ExportOptions) -> Tally:
    """Images from the archive's entries; classification and anomaly classes from their folders
    (in Unclassified/, the unclassified label's tag from annotations.csv); splits and every other
    annotation from annotations.csv. A region counts only when its image's two masks are there."""
    tally = Tally()
    with zipfile.ZipFile(path) as archive:
        dataset_type = json.loads(archive.comment or b"{}").get("dataset_type")
        in_folders, masked = dataset_type in FOLDER_TYPES, dataset_type in MASK_TYPES
        entries = [name for name in archive.namelist() if not name.endswith("/")]
        masks = {name for name in entries if MASKS in name.split("/")}
        images = {name for name in entries if name not in masks and name not in (ANNOTATIONS_CSV, CLASSES_CSV)}
        with archive.open(ANNOTATIONS_CSV) as raw:
            listed = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
            for image_path, rows in itertools.groupby(listed, key=lambda row: row["image"]):
                if image_path not in images:
                    continue
                images.discard(image_path)
                rows = list(rows)
                split = rows[0]["split"]
                tally.add_image(split)
                folder_label = _folder_label(image_path) if in_folders else None
                if folder_label is not None:
                    tally.add_annotation(folder_label, split)
                has_masks = set(mask_names(image_path)) <= masks
                for row in rows:
                    if not row["label"] or (row["shape"] == "tag" and folder_label is not None):
                        continue
                    if masked and row["shape"] in AREA_SHAPES and not has_masks:
                        tally.skip("a region whose mask is missing")
                    else:
                        tally.add_annotation(row["label"], split)
        for _ in images:
            tally.add_image("(not in annotations.csv)")
    return tally


def mask_names(image_path: str) -> tuple[str, str]:
    """The class mask and the object mask of the image at this path in the archive."""
    folder, name = posixpath.split(image_path)
    stem = posixpath.splitext(name)[0] + ".png"
    return posixpath.join(folder, MASKS, stem), posixpath.join(folder, MASKS, OBJECTS, stem)


def _folder_label(image_path: str) -> str | None:
    top = image_path.split("/", 1)[0]
    return None if top == UNCLASSIFIED else unquote(top)
