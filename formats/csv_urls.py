"""CSV of image download URLs: one row per image, `url` first, each a signed link that works without
signing in until it expires (options.url_expiry_s; services/signed_urls.py), then what a script
needs to name and place the file: file_name (bare or with its folders), split, width and height.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import BinaryIO

from formats.base import ExportOptions, ExportSource, Progress, Tally

KEY = "csv_urls"
TITLE = "CSV of image URLs"
DATASET_TYPES = ("classification", "multilabel", "detection", "segmentation", "anomaly")
OPTIONS = ("full_path", "url_expiry_s")

COLUMNS = ("url", "file_name", "split", "width", "height")


def file_name(source: ExportSource, options: ExportOptions) -> str:
    version = f"-{source.version_name}" if source.version_name else ""
    return f"{source.dataset_name}{version}-urls.csv"


def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally:
    tally = Tally()
    # newline="": the csv module writes its own \r\n line ends.
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for done, image in enumerate(source.images(), start=1):
        writer.writerow((source.signed_url(image, options.url_expiry_s), image.name(options.full_path), image.split, image.width, image.height))
        tally.add_image(image.split)
        if image.annotations:
            tally.skip("annotation: a CSV of URLs lists images only", len(image.annotations))
        progress(done)
    text.detach()  # the caller owns `out`
    return tally


def count(path: Path, options: ExportOptions) -> Tally:
    tally = Tally()
    with open(path, encoding="utf-8", newline="") as rows:
        reader = csv.DictReader(rows)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"not a CSV of image URLs: the header is {reader.fieldnames}")
        for row in reader:
            if not row["url"]:
                raise ValueError(f"the row of {row['file_name']!r} has no url")
            tally.add_image(row["split"])
    return tally
