"""Loupe JSON: the dataset's labels and every image with its path, size, split, state, tags and
annotations, in pixel or percent coordinates.

One JSON document, written as it streams: the head, then one image object per line, then the
tail. count() reads it back a line at a time on that layout, so neither side holds the file.

Import reads any layout of the document (it may have been reformatted): labels with their colors
and attribute definitions, each image's path, size, split and annotations; percent coordinates
come back as fractions. An image's tags, state and external id have no place in an import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

from core.errors import is_finite_number, is_int
from formats.base import (
    ExportOptions, ExportSource, ImageFinder, ImportAnnotation, ImportImage, ImportLabel, NotThisFormat, Parsed, Progress, Tally,
    data_files, labels_by_id, relative, split_named,
)
from services.shapes import GEOMETRY_KEYS, POINT_SHAPES, SHAPES, convert

KEY = "json"
TITLE = "Loupe JSON"
IMPORT_TITLE = "Loupe JSON (the file, or a ZIP with it and the images)"
DATASET_TYPES = ("classification", "multilabel", "detection", "segmentation", "anomaly")
OPTIONS = ("coordinates", "full_path")

FORMAT_VERSION = 1
IMAGES_KEY = '"images": ['


def file_name(source: ExportSource, options: ExportOptions) -> str:
    version = f"-{source.version_name}" if source.version_name else ""
    return f"{source.dataset_name}{version}-loupe.json"


def _dumps(value) -> str:
    # allow_nan=False: a NaN in stored geometry would make the file unreadable by strict parsers.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally:
    labels = labels_by_id(source)
    tally = Tally()
    head = {
        "loupe_export": FORMAT_VERSION,
        "dataset": {"name": source.dataset_name, "type": source.dataset_type, "version": source.version_name},
        "coordinates": options.coordinates,
        "labels": [
            {"id": label.id, "name": label.name, "color": label.color, "unclassified": label.unclassified,
             "attributes": list(label.attributes)}
            for label in source.labels
        ],
    }
    # The head without its closing brace, so the images array follows inside the same object.
    out.write((_dumps(head)[:-1] + "," + IMAGES_KEY + "\n").encode())
    done = 0
    for image in source.images():
        annotations = []
        for annotation in image.annotations:
            label = labels[annotation.label_id]
            annotations.append({
                "label": label.name, "label_id": label.id, "shape": annotation.shape,
                "geometry": convert(annotation.shape, annotation.geometry, image.width, image.height, options.coordinates),
                "attributes": annotation.attributes, "text": annotation.text,
                "source": annotation.source, "score": annotation.score,
            })
            tally.add_annotation(label.name, image.split)
        record = {
            "id": image.id, "file_name": image.name(options.full_path), "width": image.width, "height": image.height,
            "format": image.format, "split": image.split, "state": image.state, "external_id": image.external_id,
            "tags": list(image.tags), "annotations": annotations,
        }
        out.write(((",\n" if done else "") + _dumps(record)).encode())
        tally.add_image(image.split)
        done += 1
        progress(done)
    out.write(b"\n]}\n")
    return tally


def count(path: Path, options: ExportOptions) -> Tally:
    tally = Tally()
    with open(path, encoding="utf-8") as lines:
        head = lines.readline()
        if not head.endswith(IMAGES_KEY + "\n"):
            raise ValueError("not a Loupe JSON export: the head line does not open the images list")
        json.loads(head[: -len(IMAGES_KEY) - 2] + "}")  # the head on its own is valid JSON
        ended = False
        for line in lines:
            line = line.rstrip("\n")
            if line == "]}":
                ended = True
                continue
            if ended or not line:
                raise ValueError("not a Loupe JSON export: text after the end of the images list")
            image = json.loads(line.removesuffix(","))
            tally.add_image(image["split"])
            for annotation in image["annotations"]:
                tally.add_annotation(annotation["label"], image["split"])
        if not ended:
            raise ValueError("the Loupe JSON export ends before its images list does (a partial file)")
    return tally


# ---- import ---------------------------------------------------------------------------------

COORDINATES = {"pixel": 1.0, "percent": 100.0}  # what the image's full width measures in each
MAX_SHOWN = 60


class _Problem(ValueError):
    """What is wrong with one record of the document."""


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "..."


def _load(path: Path, where: str) -> dict:
    """The document of a Loupe JSON export, or NotThisFormat."""
    try:
        with open(path, "rb") as raw:
            document = json.load(raw)
    # ValueError: bad JSON, bad UTF-8, an integer of too many digits; RecursionError: nesting too deep.
    except (ValueError, RecursionError) as error:
        raise NotThisFormat(f"{where} is not readable JSON: {str(error)[:200]}") from None
    if not isinstance(document, dict) or "loupe_export" not in document:
        raise NotThisFormat(f"{where} is not a Loupe JSON export (no loupe_export key at its top)")
    if document["loupe_export"] != FORMAT_VERSION:
        raise NotThisFormat(f"{where} is a Loupe JSON export of version {_shown(document['loupe_export'])}; this Loupe reads version {FORMAT_VERSION}")
    if document.get("coordinates") not in COORDINATES:
        raise NotThisFormat(f"{where}: coordinates must be one of {', '.join(COORDINATES)}, not {_shown(document.get('coordinates'))}")
    for key in ("labels", "images"):
        if not isinstance(document.get(key), list):
            raise NotThisFormat(f"{where}: {key} must be a list")
    return document


def _label(record) -> ImportLabel:
    if not isinstance(record, dict) or not isinstance(record.get("name"), str) or not record["name"].strip():
        raise _Problem("a label needs a name")
    attributes = record.get("attributes") or []
    if not isinstance(attributes, list) or not all(isinstance(a, dict) for a in attributes):
        raise _Problem(f"label {record['name']!r}: attributes must be a list of attribute definitions")
    color = record.get("color")
    return ImportLabel(record["name"], tuple(attributes), color if isinstance(color, str) else None)


def _geometry(shape: str, geometry, span: float) -> dict:
    """The geometry in the import's units: pixels as they are, percent as fractions."""
    if not isinstance(geometry, dict):
        raise _Problem("geometry must be an object")
    if shape in POINT_SHAPES:
        found = geometry.get("points")
        if set(geometry) != {"points"} or not isinstance(found, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(is_finite_number(c) for c in p) for p in found
        ):
            raise _Problem(f"a {shape}'s geometry must be {{points: [[x, y], ...]}} of finite numbers, not {_shown(geometry)}")
        return {"points": [[x / span, y / span] for x, y in found]}
    keys = GEOMETRY_KEYS[shape]
    if set(geometry) != set(keys) or not all(is_finite_number(geometry[k]) for k in keys):
        raise _Problem(f"a {shape}'s geometry must be {{{', '.join(keys)}}} of finite numbers, not {_shown(geometry)}")
    return {key: geometry[key] / span for key in keys}


def _annotation(record, span: float) -> ImportAnnotation:
    if not isinstance(record, dict):
        raise _Problem("an annotation must be an object")
    label, shape = record.get("label"), record.get("shape")
    if not isinstance(label, str) or not label.strip():
        raise _Problem("an annotation needs a label name")
    if shape not in SHAPES:
        raise _Problem(f"unknown shape {_shown(shape)}; one of {', '.join(SHAPES)}")
    attributes = record.get("attributes") or {}
    text = record.get("text")
    if not isinstance(attributes, dict):
        raise _Problem("attributes must be an object")
    if text is not None and not isinstance(text, str):
        raise _Problem("text must be text or null")
    score = None
    if record.get("source") == "prediction" and record.get("score") is not None:
        if not is_finite_number(record["score"]):
            raise _Problem(f"score must be a finite number, not {_shown(record['score'])}")
        score = record["score"]
    return ImportAnnotation(label, shape, _geometry(shape, record.get("geometry"), span), attributes, text, score)


def _image(record, span: float, finder: ImageFinder, folder: Path) -> ImportImage:
    if not isinstance(record, dict) or not isinstance(record.get("file_name"), str) or not record["file_name"].strip():
        raise _Problem("an image must be an object with a file_name")
    image = ImportImage(path=record["file_name"], split=split_named(record.get("split")), units="pixel" if span == 1 else "fraction",
                        file=finder.find(folder, record["file_name"]))
    width, height = record.get("width"), record.get("height")
    if width is not None or height is not None:
        if is_int(width) and is_int(height) and width > 0 and height > 0:
            image.width, image.height = width, height
        else:
            image.problems.append(f"width and height must be whole numbers over 0, not {_shown(width)} x {_shown(height)}")
    annotations = record.get("annotations") or []
    if not isinstance(annotations, list):
        image.problems.append("annotations must be a list")
        return image
    for index, annotation in enumerate(annotations):
        try:
            image.annotations.append(_annotation(annotation, span))
        except _Problem as problem:
            image.problems.append(f"annotations[{index}]: {problem}")
    return image


def parse(root: Path) -> Parsed:
    """Every Loupe JSON export of the upload (usually one), with the images beside it found by name."""
    paths = data_files(root, ".json")
    if not paths:
        raise NotThisFormat("the upload holds no .json file")
    finder = ImageFinder(root)
    labels, images, problems, refused = {}, [], [], []
    for path in paths:
        where = relative(root, path)
        try:
            document = _load(path, where)
        except NotThisFormat as error:
            refused.append((where, str(error)))
            continue
        span = COORDINATES[document["coordinates"]]
        for index, record in enumerate(document["labels"]):
            try:
                label = _label(record)
            except _Problem as problem:
                problems.append((f"{where} labels[{index}]", str(problem)))
                continue
            labels.setdefault(label.name, label)
        for index, record in enumerate(document["images"]):
            try:
                image = _image(record, span, finder, path.parent)
            except _Problem as problem:
                problems.append((f"{where} images[{index}]", str(problem)))
                continue
            if record.get("split") is not None and image.split is None:
                problems.append((f"{where} images[{index}]", f"unknown split {_shown(record['split'])}: the image's split is left as it is"))
            images.append(image)
    if len(refused) == len(paths):
        raise NotThisFormat("; ".join(why for _, why in refused))
    return Parsed(labels=list(labels.values()), images=images, problems=refused + problems)
