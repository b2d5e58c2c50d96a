"""The annotation formats Loupe exports and imports, one module each, registered here.

Adding a format: write formats/<name>.py with the names formats/base.py lists (an export side,
an import side, or both), add it to the imports and to FORMATS below, and give it a golden test in
tests/formats/ (README: "How to add a format").
"""

from formats import annotation_csv, coco, crops, csv_training, csv_urls, cvat, folders_zip, label_studio, loupe_json, voc, yolo

FORMATS = {module.KEY: module for module in (
    loupe_json, annotation_csv, coco, yolo, csv_training, csv_urls, crops, folders_zip, voc, cvat, label_studio,
)}
# The formats with each side, in the order above.
EXPORTS = {key: module for key, module in FORMATS.items() if hasattr(module, "export")}
IMPORTS = {key: module for key, module in FORMATS.items() if hasattr(module, "parse")}

