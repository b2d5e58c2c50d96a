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

Import takes two layouts:
    this export's      annotations.csv and classes.csv at the root: classes, splits and shapes come
                       from them (a circle from its bounding box), read in pixels (the ZIP does not
                       say which coordinates it was written in); masks are derived, so skipped. The
                       label folders (classification, anomaly) are recognised from the rows and
                       left out of the image's path, which is the dataset's path again.
    ImageNet-style     the first folder under the root, or under train/, val/, test/ when those are
                       all the root holds, is the image's class and the rest of its path the image's
                       path; an image directly there has no class, nor has one in Unclassified/.
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

from formats.annotation_csv import MAX_FIELD, RowProblem, points, records
from formats.annotation_csv import number as read_number
from formats.base import (
    ExportImage, ExportOptions, ExportSource, ImportAnnotation, ImportImage, ImportLabel, NotThisFormat, Parsed, Progress, Tally,
    UniqueNames, copy_original, data_files, hidden, image_files, labels_by_id, relative, split_named, zip_entry,
)
from formats.masks import draw, label_values, png_bytes, regions
from services.shapes import AREA_SHAPES, POINT_SHAPES, SHAPES, bbox_in, convert

KEY = "zip"
TITLE = "ZIP of images in label folders"
IMPORT_TITLE = "ZIP of images in label folders (Loupe's, or ImageNet-style class folders)"
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
                has_masks = masked and set(mask_names(image_path)) <= masks
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


# ---- import ---------------------------------------------------------------------------------

COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def parse(root: Path) -> Parsed:
    """This export's ZIP when annotations.csv and classes.csv are at the root, else class folders."""
    if (root / ANNOTATIONS_CSV).is_file() and (root / CLASSES_CSV).is_file():
        return _parse_listed(root)
    return _parse_class_folders(root)


def _csv_rows(path: Path, where: str, required: tuple, problems: list):
    """(line, row as a dict) of a CSV whose header must hold `required`; NotThisFormat if it does not."""
    with open(path, encoding="utf-8-sig", newline="") as text:
        rows = records(csv.reader(text), where, problems)
        header = next(rows, (0, []))[1]
        missing = [name for name in required if name not in header]
        if missing:
            raise NotThisFormat(f"{where} has no {', '.join(missing)} column: not this export's ZIP")
        for line, row in rows:
            if len(row) != len(header):
                problems.append((f"{where} line {line}", f"{len(row)} fields, the header has {len(header)}"))
            else:
                yield line, dict(zip(header, row))


def _listed_annotation(row: dict) -> ImportAnnotation | None:
    if not row["label"]:
        return None
    shape = row["shape"]
    if shape not in SHAPES:
        raise RowProblem(f"unknown shape {shape[:40]!r}; one of {', '.join(SHAPES)}")
    if shape == "tag":
        return ImportAnnotation(row["label"], shape, {})
    if shape in POINT_SHAPES:
        return ImportAnnotation(row["label"], shape, {"points": points(row["points"])})
    x0, y0, x1, y1 = (read_number(row[name], name) for name in ("x_min", "y_min", "x_max", "y_max"))
    if shape == "box":
        return ImportAnnotation(row["label"], shape, {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})
    # A circle is listed as its bounding box; its radius, like convert()'s, follows the width.
    r = (x1 - x0) / 2
    return ImportAnnotation(row["label"], shape, {"cx": x0 + r, "cy": (y0 + y1) / 2, "r": r})


def _parse_listed(root: Path) -> Parsed:
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD))
    problems = []
    labels = {}
    for line, row in _csv_rows(root / CLASSES_CSV, CLASSES_CSV, ("label",), problems):
        name, color = row["label"], row.get("color", "")
        if not name.strip():
            problems.append((f"{CLASSES_CSV} line {line}", "a class with no name"))
            continue
        if color and not COLOR.fullmatch(color):
            problems.append((f"{CLASSES_CSV} line {line}", f"the color of {name!r} is not #rrggbb: {color[:40]!r}"))
        labels.setdefault(name, ImportLabel(name, color=color if COLOR.fullmatch(color) else None))
    on_disk = {relative(root, path): path for path in image_files(root) if MASKS not in path.relative_to(root).parts}
    images: dict[str, ImportImage] = {}
    for line, row in _csv_rows(root / ANNOTATIONS_CSV, ANNOTATIONS_CSV, COLUMNS, problems):
        where = f"{ANNOTATIONS_CSV} line {line}"
        if not row["image"]:
            problems.append((where, "the row names no image"))
            continue
        image = images.get(row["image"])
        if image is None:
            image = images[row["image"]] = ImportImage(path=row["image"], split=split_named(row["split"]), file=on_disk.get(row["image"]))
            if row["split"] and image.split is None:
                problems.append((where, f"unknown split {row['split'][:40]!r}: the image's split is left as it is"))
        try:
            annotation = _listed_annotation(row)
        except RowProblem as problem:
            image.problems.append(f"line {line}: {problem}")
            continue
        if annotation:
            image.annotations.append(annotation)
    for path in sorted(set(on_disk) - set(images)):
        images[path] = ImportImage(path=path, file=on_disk[path])
        problems.append((path, f"not in {ANNOTATIONS_CSV}: imported without annotations or split"))
    foldered = _in_label_folders(images.values(), labels)
    for image in images.values():
        parts = image.path.split("/")
        image.path = "/".join(unquote(part) for part in (parts[1:] if foldered else parts))
    return Parsed(labels=list(labels.values()), images=list(images.values()), problems=problems)


def _in_label_folders(images, labels: dict) -> bool:
    """Whether the archive lays its images out in class folders (classification, anomaly): every
    image sits in the folder of its first tag, or in Unclassified/. A dataset folder can pass for
    neither: its names are escaped where they would read as Unclassified."""
    folders = {safe_segment(name) for name in labels}
    listed = False
    for image in images:
        parts = image.path.split("/")
        tags = [a.label for a in image.annotations if a.shape == "tag"]
        if len(parts) < 2 or (parts[0] != UNCLASSIFIED and (not tags or safe_segment(tags[0]) != parts[0] or parts[0] not in folders)):
            return False
        listed = True
    return listed


def _parse_class_folders(root: Path) -> Parsed:
    files = data_files(root)
    found = set(image_files(root))
    if not found:
        raise NotThisFormat("the upload holds no image files")
    problems = [(relative(root, path), "not an image file: left out") for path in sorted(set(files) - found)]
    tops = [path for path in root.iterdir() if path.is_dir() and not hidden(root, path)]
    # Subset folders only when they are all the root holds: a class may well be named "test".
    subsets = bool(tops) and all(split_named(path.name) for path in tops)
    labels, images = {}, []
    for path in sorted(found):
        parts = relative(root, path).split("/")
        split, subset = None, []
        if subsets and len(parts) > 1:
            # The subset folder stays in the path: the subsets often hold the same names.
            split, subset, parts = split_named(parts[0]), [parts[0]], parts[1:]
        image = ImportImage(path="/".join(subset + (parts[1:] or parts)), split=split, file=path)
        if len(parts) > 1 and parts[0] != UNCLASSIFIED:
            image.annotations.append(ImportAnnotation(parts[0], "tag", {}))
            labels.setdefault(parts[0], ImportLabel(parts[0]))
        images.append(image)
    return Parsed(labels=list(labels.values()), images=images, problems=problems)
