"""Crops of one label's annotations: a ZIP of WebP images, one per box, polygon or circle (its
bounding box, services/crops.py), and `crops.csv` listing every image with the crops cut from it.

A crop is named `<image stem>_<index>.webp` (with the image's folders when full_path is set), the
index counting that image's crops of the label from 0, as the crops API numbers them; a name
already taken in the archive (two images with one stem) gets the image id: `<stem>-<id>_<index>.webp`.
"""

from __future__ import annotations

import csv
import io
import posixpath
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

from core.errors import Invalid
from formats.base import ExportOptions, ExportSource, Progress, Tally, labels_by_id
from services import crops as service
from services.imaging import ImageRejected

KEY = "crops"
TITLE = "Crops of a label (WebP)"
DATASET_TYPES = ("multilabel", "detection", "segmentation", "anomaly")  # the types with regions
OPTIONS = ("crop_label_id", "full_path")
REQUIRED = ("crop_label_id",)

MANIFEST = "crops.csv"
COLUMNS = ("crop", "image_id", "image", "split", "label", "x", "y", "width", "height")


def _label(source: ExportSource, options: ExportOptions):
    label = labels_by_id(source).get(options.crop_label_id)
    if label is None:
        # A label the tag map merged into another is not one of the export's: name that one.
        raise Invalid(f"Crops need crop_label_id, a label of the export; {options.crop_label_id!r} is none", details={"field": "crop_label_id"})
    return label


def file_name(source: ExportSource, options: ExportOptions) -> str:
    version = f"-{source.version_name}" if source.version_name else ""
    return f"{source.dataset_name}{version}-crops-{_label(source, options).name}.zip"


def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally:
    label = _label(source, options)
    tally = Tally()
    taken: set[str] = set()  # one name per crop, as the archive's own directory keeps
    # The manifest waits in a temporary file: the archive takes one entry at a time, crops first.
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as manifest, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # WebP is compressed already
        writer = csv.writer(manifest)
        writer.writerow(COLUMNS)
        for done, image in enumerate(source.images(), start=1):
            name = image.name(options.full_path)
            listed = [image.id, name, image.split, label.name]
            crops = service.numbered(image.annotations, label.id, image.width, image.height)
            for annotation in image.annotations:
                if annotation.label_id != label.id:
                    tally.skip("annotation of another label")
                elif service.crop_box(annotation.shape, annotation.geometry, image.width, image.height) is None:
                    tally.skip(f"{annotation.shape}: no area to crop")
            webps = []
            if crops:
                try:
                    with source.open(image.storage_key) as stream:
                        webps = service.render_crops(stream, [box for _, _, box in crops])
                except FileNotFoundError:
                    tally.skip("image file missing from storage", len(crops))
                except ImageRejected:
                    tally.skip("image cannot be decoded", len(crops))
            stem = posixpath.splitext(name)[0]
            for (index, _, box), webp in zip(crops, webps):
                crop_name = f"{stem}_{index}.webp"
                if crop_name in taken:
                    crop_name = f"{stem}-{image.id}_{index}.webp"
                taken.add(crop_name)
                archive.writestr(crop_name, webp)
                writer.writerow([crop_name, *listed, box.left, box.top, box.width, box.height])
                tally.add_annotation(label.name, image.split)
            if not webps:
                writer.writerow(["", *listed, "", "", "", ""])
            tally.add_image(image.split)
            progress(done)
        manifest.seek(0)
        with archive.open(MANIFEST, "w") as entry:
            for line in manifest:
                entry.write(line.encode("utf-8"))
    return tally


def count(path: Path, options: ExportOptions) -> Tally:
    tally = Tally()
    with zipfile.ZipFile(path) as archive:
        crops = {name for name in archive.namelist() if name != MANIFEST}
        listed = set()
        previous = None
        with archive.open(MANIFEST) as entry:
            reader = csv.DictReader(io.TextIOWrapper(entry, encoding="utf-8", newline=""))
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise ValueError(f"not a crops archive: {MANIFEST} has the header {reader.fieldnames}")
            for row in reader:
                # Rows of one image follow each other; only its first row counts it.
                if row["image_id"] != previous:
                    previous = row["image_id"]
                    tally.add_image(row["split"])
                if row["crop"]:
                    if row["crop"] not in crops:
                        raise ValueError(f"{MANIFEST} lists {row['crop']!r}, which the archive does not hold")
                    listed.add(row["crop"])
                    tally.add_annotation(row["label"], row["split"])
        if crops - listed:
            raise ValueError(f"the archive holds crops {MANIFEST} does not list: {sorted(crops - listed)[:5]}")
    return tally
