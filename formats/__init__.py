"""The annotation formats Loupe exports (and imports), one module each, registered here.

Adding a format: write formats/<name>.py with the names formats/base.py lists, add it to the
imports and to FORMATS below, and give it a golden test in tests/formats/ (README: "How to add a
format").
"""

from formats import annotation_csv, coco, crops, csv_training, csv_urls, folders_zip, loupe_json, voc, yolo

FORMATS = {module.KEY: module for module in (loupe_json, annotation_csv, coco, yolo, csv_training, csv_urls, crops, folders_zip, voc)}


def get_format(key: str):
    """The module of a format key, or None."""
    return FORMATS.get(key)
