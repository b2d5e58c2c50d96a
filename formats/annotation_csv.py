"""Annotation CSV: one row per annotation, in pixel or percent coordinates.

A box fills x_min, y_min, x_max, y_max; a polygon, polyline or points fills `points` (a JSON list
of [x, y]); a circle fills cx, cy, r; a whole-image tag only `label`. An image without annotations
still has one row, with an empty label, so no image is missing from the file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import BinaryIO

from formats.base import ExportOptions, ExportSource, Progress, Tally, labels_by_id
from services.shapes import POINT_SHAPES, convert

KEY = "csv"
TITLE = "Annotation CSV"
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
