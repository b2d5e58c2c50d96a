"""Loupe JSON: the dataset's labels and every image with its path, size, split, state, tags and
annotations, in pixel or percent coordinates.

One JSON document, written as it streams: the head, then one image object per line, then the
tail. count() reads it back a line at a time on that layout, so neither side holds the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

from formats.base import ExportOptions, ExportSource, Progress, Tally, labels_by_id
from services.shapes import convert

KEY = "json"
TITLE = "Loupe JSON"
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
