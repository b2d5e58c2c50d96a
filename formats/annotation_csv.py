"""Annotation CSV: one row per annotation, in pixel or percent coordinates.

A box fills x_min, y_min, x_max, y_max; a polygon, polyline or points fills `points` (a JSON list
of [x, y]); a circle fills cx, cy, r; a whole-image tag only `label`. An image without annotations
still has one row, with an empty label, so no image is missing from the file.

Import reads every .csv of the upload, each in the layout its header names (spaces around the
names ignored, as Roboflow writes ", "):
    Loupe's own        image, label, shape, ... as export() writes them, in pixels
    classes            <image>, label_name (or label, class): a tag per row
    one-hot            <image>, <class>, <class>...: a tag per 1 (the class columns are the labels)
    boxes (VoTT)       <image>, xmin, ymin, xmax, ymax, label: a box per row, in pixels
where <image> is image_name, image, filename, file_name, file or path, and a split, set or subset
column gives the split; without one, the file's name (VoTT's train-export.csv) or its folder
(Roboflow's train/_classes.csv) may.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import BinaryIO, Iterator

from core.errors import is_finite_number
from formats.base import (
    ExportOptions, ExportSource, ImageFinder, ImportAnnotation, ImportImage, ImportLabel, NotThisFormat, Parsed, Progress, Tally,
    data_files, labels_by_id, relative, split_named,
)
from services.shapes import GEOMETRY_KEYS, POINT_SHAPES, SHAPES, convert

KEY = "csv"
TITLE = "Annotation CSV"
IMPORT_TITLE = "CSV: Loupe's annotation CSV, image + label classes, one-hot multilabel, or VoTT boxes (a .csv, or a ZIP with images)"
DATASET_TYPES = ("classification", "multilabel", "detection", "segmentation", "anomaly")
OPTIONS = ("coordinates", "full_path")

COLUMNS = (
    "image_id", "image", "width", "height", "split", "label", "shape",
    "x_min", "y_min", "x_max", "y_max", "points", "cx", "cy", "r", "text", "attributes", "score", "source",
)


def file_name(source: ExportSource, options: ExportOptions) -> str:
    version = f"-{source.version_name}" if source.version_name else ""
    return f"{source.dataset_name}{version}-annotations.csv"


def _geometry_columns(shape: str, geometry: dict) -> dict:
    if shape == "box":
        return {"x_min": geometry["x"], "y_min": geometry["y"],
                "x_max": geometry["x"] + geometry["width"], "y_max": geometry["y"] + geometry["height"]}
    if shape == "circle":
        return {"cx": geometry["cx"], "cy": geometry["cy"], "r": geometry["r"]}
    if shape in POINT_SHAPES:
        return {"points": json.dumps(geometry["points"], separators=(",", ":"))}
    return {}


def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally:
    labels = labels_by_id(source)
    tally = Tally()
    # newline="": the csv module writes its own \r\n line ends.
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.DictWriter(text, COLUMNS)
    writer.writeheader()
    done = 0
    for image in source.images():
        common = {"image_id": image.id, "image": image.name(options.full_path), "width": image.width,
                  "height": image.height, "split": image.split}
        for annotation in image.annotations:
            label = labels[annotation.label_id]
            geometry = convert(annotation.shape, annotation.geometry, image.width, image.height, options.coordinates)
            writer.writerow({
                **common, "label": label.name, "shape": annotation.shape, **_geometry_columns(annotation.shape, geometry),
                "text": annotation.text or "", "attributes": json.dumps(annotation.attributes) if annotation.attributes else "",
                "score": "" if annotation.score is None else annotation.score, "source": annotation.source,
            })
            tally.add_annotation(label.name, image.split)
        if not image.annotations:
            writer.writerow(common)
        tally.add_image(image.split)
        done += 1
        progress(done)
    text.detach()  # the caller owns `out`
    return tally


def count(path: Path, options: ExportOptions) -> Tally:
    tally = Tally()
    previous = None
    with open(path, encoding="utf-8", newline="") as rows:
        reader = csv.DictReader(rows)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"not an annotation CSV: the header is {reader.fieldnames}")
        for row in reader:
            # Rows of one image follow each other; only its first row counts it.
            if row["image_id"] != previous:
                previous = row["image_id"]
                tally.add_image(row["split"])
            if row["label"]:
                tally.add_annotation(row["label"], row["split"])
    return tally


# ---- import ---------------------------------------------------------------------------------

IMAGE_COLUMNS = ("image", "image_name", "filename", "file_name", "file", "path")
SPLIT_COLUMNS = ("split", "set", "subset")
LABEL_COLUMNS = ("label", "label_name", "class", "class_name")
BOX_COLUMNS = ("xmin", "ymin", "xmax", "ymax")
# A field longer than this is refused as a problem: room for a polygon of MAX_POINTS long floats,
# not for a runaway quote swallowing the rest of a file.
MAX_FIELD = 1 << 20
MAX_SHOWN = 40  # characters of a bad value quoted in a problem


class RowProblem(ValueError):
    """What is wrong with one row."""


def shown(value: str) -> str:
    return repr(value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + "...")


def number(value: str, column: str) -> float:
    """A finite number from a field, or RowProblem naming the column."""
    try:
        parsed = float(value)
    except ValueError:
        raise RowProblem(f"{column} is not a number: {shown(value)}") from None
    if not is_finite_number(parsed):
        raise RowProblem(f"{column} must be a finite number, not {shown(value)}")
    return parsed


def size(value: str, column: str) -> int:
    """An image's width or height: a whole number of pixels over 0, or RowProblem."""
    parsed = number(value, column)
    if not parsed.is_integer() or parsed < 1:
        raise RowProblem(f"{column} must be a whole number of pixels over 0, not {shown(value)}")
    return int(parsed)


def points(value: str) -> list[list[float]]:
    """A JSON list of [x, y] pairs of finite numbers, or RowProblem."""
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        raise RowProblem(f"points is not JSON: {shown(value)}") from None
    if not isinstance(parsed, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(is_finite_number(c) for c in p) for p in parsed
    ):
        raise RowProblem(f"points must be a list of [x, y] pairs of finite numbers: {shown(value)}")
    return parsed


class Layout:
    """How one file's header reads: which column holds what."""

    def __init__(self, header: list[str]):
        self.header = [name.strip() for name in header]
        names = [name.casefold() for name in self.header]
        if len(set(names)) != len(names):
            raise NotThisFormat(f"the header names a column twice: {','.join(self.header)}")
        self.columns = {name: index for index, name in enumerate(names)}
        self.ours = {"image", "label", "shape"} <= set(names)
        image = next((name for name in IMAGE_COLUMNS if name in self.columns), None)
        if image is None:
            raise NotThisFormat(f"no image column ({', '.join(IMAGE_COLUMNS)}) in the header {','.join(self.header)[:200]}")
        self.image = self.columns[image]
        self.split = next((self.columns[name] for name in SPLIT_COLUMNS if name in self.columns), None)
        rest = [name for name in names if self.columns[name] not in (self.image, self.split)]
        label = next((name for name in LABEL_COLUMNS if name in rest), None)
        if self.ours:
            self.kind = "ours"
        elif set(BOX_COLUMNS) <= set(rest) and label:
            self.kind, self.label = "boxes", self.columns[label]
        elif len(rest) == 1 and label:
            self.kind, self.label = "classes", self.columns[label]
        elif rest and all(rest):
            self.kind = "one-hot"
            self.classes = [(self.columns[name], self.header[self.columns[name]]) for name in rest]
        else:
            raise NotThisFormat(f"the header {','.join(self.header)[:200]} is none of the CSV layouts this import reads")

    def get(self, row: list[str], name: str) -> str:
        index = self.columns.get(name)
        return "" if index is None or index >= len(row) else row[index]

    def labels(self) -> list[str]:
        """The labels the header itself defines (the one-hot layout's class columns)."""
        return [name for _, name in self.classes] if self.kind == "one-hot" else []

    def annotations(self, row: list[str]) -> list[ImportAnnotation]:
        """The row's annotations, or RowProblem."""
        if self.kind == "ours":
            annotation = _ours(self, row)
            return [annotation] if annotation else []
        values = [value.strip() for value in row]
        if self.kind == "classes":
            return [ImportAnnotation(values[self.label], "tag", {})] if values[self.label] else []
        if self.kind == "one-hot":
            tags = []
            for index, name in self.classes:
                if values[index] not in ("0", "1", ""):
                    raise RowProblem(f"{name} must be 0 or 1, not {shown(values[index])}")
                if values[index] == "1":
                    tags.append(ImportAnnotation(name, "tag", {}))
            return tags
        x0, y0, x1, y1 = (number(values[self.columns[name]], name) for name in BOX_COLUMNS)
        if not values[self.label]:
            raise RowProblem("the box has no label")
        if x1 <= x0 or y1 <= y0:
            raise RowProblem(f"the box ({x0}, {y0}, {x1}, {y1}) has no area: xmax must be over xmin, ymax over ymin")
        return [ImportAnnotation(values[self.label], "box", {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})]


def _ours(layout: Layout, row: list[str]) -> ImportAnnotation | None:
    label = layout.get(row, "label")
    if not label:
        return None
    shape = layout.get(row, "shape")
    if shape not in SHAPES:
        raise RowProblem(f"unknown shape {shown(shape)}; one of {', '.join(SHAPES)}")
    if shape == "box":
        x0, y0, x1, y1 = (number(layout.get(row, name), name) for name in ("x_min", "y_min", "x_max", "y_max"))
        geometry = {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}
    elif shape in POINT_SHAPES:
        geometry = {"points": points(layout.get(row, "points"))}
    else:
        geometry = {key: number(layout.get(row, key), key) for key in GEOMETRY_KEYS[shape]}
    attributes = {}
    if layout.get(row, "attributes"):
        try:
            attributes = json.loads(layout.get(row, "attributes"))
        except (ValueError, RecursionError):
            raise RowProblem(f"attributes is not JSON: {shown(layout.get(row, 'attributes'))}") from None
        if not isinstance(attributes, dict):
            raise RowProblem("attributes must be a JSON object")
    # The export writes every annotation's score column; only a prediction's score means one.
    score = None
    if layout.get(row, "source") != "human" and layout.get(row, "score"):
        score = number(layout.get(row, "score"), "score")
    return ImportAnnotation(label, shape, geometry, attributes, layout.get(row, "text") or None, score)


def _file_split(root: Path, path: Path) -> str | None:
    """The split a file's name (train-export.csv) or, failing that, its folder (val/_classes.csv) gives."""
    named = split_named(re.split(r"[-_. ]", path.stem, maxsplit=1)[0])
    if named:
        return named
    for folder in reversed(path.parent.relative_to(root).parts):
        if split_named(folder):
            return split_named(folder)
    return None


def records(reader, where: str, problems: list) -> Iterator[tuple[int, list[str]]]:
    """(line number, row) for each readable row; the unreadable ones as problems."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            problems.append((f"{where} line {reader.line_num}", f"unreadable CSV row: {error}"))
            continue
        except UnicodeDecodeError:
            problems.append((f"{where} line {reader.line_num + 1}", "not UTF-8 text; the rest of the file was not read"))
            return
        if any(len(field) > MAX_FIELD for field in row):
            # Also when another part of the process raised csv's own limit past MAX_FIELD.
            problems.append((f"{where} line {reader.line_num}", f"field larger than field limit ({MAX_FIELD})"))
        elif any("\0" in field for field in row):
            # Python's csv reads NUL; no database text column stores it.
            problems.append((f"{where} line {reader.line_num}", "a field holds a NUL character"))
        elif any(field.strip() for field in row):
            yield reader.line_num, row


class _File:
    """One CSV file's images, in the order it first names them."""

    def __init__(self, root: Path, path: Path, finder: ImageFinder, problems: list):
        self.root, self.path, self.finder, self.problems = root, path, finder, problems
        self.where = relative(root, path)
        self.split = _file_split(root, path)
        self.images: dict[tuple, ImportImage] = {}

    def read(self) -> Layout:
        with open(self.path, encoding="utf-8-sig", newline="") as text:
            reader = csv.reader(text)
            rows = records(reader, self.where, self.problems)
            mark = len(self.problems)
            first = next(rows, None)
            if first is None:
                why = "; ".join(why for _, why in self.problems[mark:]) or "the file is empty"
                del self.problems[mark:]
                raise NotThisFormat(why)
            layout = Layout(first[1])
            for line, row in rows:
                self._row(layout, line, row)
        return layout

    def _row(self, layout: Layout, line: int, row: list[str]) -> None:
        where = f"{self.where} line {line}"
        name = row[layout.image].strip().replace("\\", "/") if layout.image < len(row) else ""
        if not name:
            self.problems.append((where, "the row names no image"))
            return
        # Loupe's own rows carry the image's id: two images of one name in different folders stay two.
        image = self._image(layout.get(row, "image_id") if layout.ours else "", name)
        if len(row) != len(layout.header):
            image.problems.append(f"line {line}: {len(row)} fields, the header has {len(layout.header)}")
            return
        if layout.split is not None and row[layout.split].strip():
            split = split_named(row[layout.split])
            if split is None:
                self.problems.append((where, f"unknown split {shown(row[layout.split])}: the image's split is left as it is"))
            image.split = split or image.split
        try:
            if layout.ours and image.width is None:
                image.width, image.height = (size(layout.get(row, key), key) for key in ("width", "height"))
            image.annotations.extend(layout.annotations(row))
        except RowProblem as problem:
            image.problems.append(f"line {line}: {problem}")

    def _image(self, image_id: str, name: str) -> ImportImage:
        key = (image_id, name)
        if key not in self.images:
            self.images[key] = ImportImage(path=name, split=self.split, file=self.finder.find(self.path.parent, name))
        return self.images[key]


def parse(root: Path) -> Parsed:
    """Every CSV of the upload, each in the layout its header names (see the module's docstring)."""
    # csv's limit is process-wide; raising it to MAX_FIELD only ever lets more through.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD))
    paths = data_files(root, ".csv")
    if not paths:
        raise NotThisFormat("the upload holds no .csv file")
    finder = ImageFinder(root)
    labels, images, problems, refused = {}, [], [], []
    for path in paths:
        read = _File(root, path, finder, problems)
        try:
            layout = read.read()
        except NotThisFormat as error:
            refused.append((read.where, f"not a CSV this import reads: {error}"))
            continue
        labels.update(dict.fromkeys(layout.labels()))
        for image in read.images.values():
            labels.update(dict.fromkeys(a.label for a in image.annotations))
            images.append(image)
    if len(refused) == len(paths):
        raise NotThisFormat("; ".join(f"{where}: {why}" for where, why in refused))
    return Parsed(labels=[ImportLabel(name) for name in labels], images=images, problems=refused + problems)
