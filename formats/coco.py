"""COCO instances: categories, images and their annotations, loadable by pycocotools' COCO().

Layout. With images (the default), a ZIP in CVAT's COCO layout, one file per split present:
    annotations/instances_<split>.json     (train, validation, test, unassigned, review)
    images/<split>/<file_name>             the original bytes, stored as they are
Without images, one instances JSON holding every split.

What goes where:
- images: `id` is Loupe's image id; `file_name` bare or with its folder path (the full_path
  option), made unique inside its split (formats.base.UniqueNames); and two Loupe keys COCO
  readers ignore: `split`, and `classes`, the whole-image classes (tag annotations), as
  [{"category_id", "attributes", "score"?, "text"?}], since COCO instances have nowhere for them.
  Free-form image tags, when there are any, are in `tags`.
- categories: the labels in display order, ids from 1.
- annotations: boxes, polygons and circles, with `bbox` [x, y, width, height], `area`, `iscrowd` 0
  and `segmentation` [[x1, y1, x2, y2, ...]]. A box's segmentation is its four corners, because
  annToMask() fails on an empty one, and a circle's is its outline (services/shapes.py); `shape`
  (box, polygon, circle) says what was drawn, so an import gets the box or circle back from `bbox`.
  `attributes` always; `score` for predictions; `text` where the label asks for it. Polylines and
  points enclose nothing and COCO keypoints need a fixed skeleton per category, so they are left out
  and counted in the tally's `skipped`.
- coordinates "percent": bbox and segmentation in percent (0-100) of the image's width and height,
  area in percent squared; width and height stay in pixels. Masks need pixel coordinates.

Memory stays flat in the number of images: each split's images and annotations arrays go to two
temporary files as the images stream by (the image bytes go straight into the ZIP), and the split's
JSON is put together from them at the end, one pass over source.images().

Import (parse). Every *.json under the folder that is an instances document (images, annotations and
categories lists), in path order: one uploaded JSON, the layouts above, COCO's own
annotations/instances_val2017.json + val2017/, or images beside the JSON. Ids are per file.
- images: path = file_name; split from the image's `split` (ours), else from instances_<subset>.json
  ("val2017" is validation); `file` is the image under the folder when one is found for it
  (_ImageFiles.find).
- one Loupe annotation per COCO object: the `shape` we wrote (box and circle from `bbox`); else no
  segmentation -> box; polygons -> polygon, several parts joined into one; RLE -> the traced mask
  (formats/coco_masks.py). iscrowd 1 -> attributes["iscrowd"] = True; `score` makes a prediction.
- our `classes` become tag annotations; free-form `tags` have no place in an import and are skipped.
- what cannot be used (unknown image or category, a bad bbox, NaN, a broken RLE) is a problem of its
  image, or of the file when there is no image to pin it on; the rest imports.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import shutil
import tempfile
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import BinaryIO, TextIO

from core.errors import is_finite_number
from formats.base import (
    SPLITS, ExportImage, ExportOptions, ExportSource, ImportAnnotation, ImportImage, ImportLabel, NotThisFormat, Parsed,
    Progress, Tally, UniqueNames, copy_original, data_files, image_files, labels_by_id, relative, split_named, zip_entry,
)
from formats.coco_masks import MaskProblem, join_parts, mask_polygon, orient, polygon_parts, rle_mask
from services.shapes import AREA_SHAPES, area_in, bbox_in, flatten, outline_in

KEY = "coco"
TITLE = "COCO instances"
IMPORT_TITLE = "COCO instances (JSON, or a ZIP with images)"
DATASET_TYPES = ("classification", "multilabel", "detection", "segmentation", "anomaly")
OPTIONS = ("coordinates", "full_path", "include_images")

SKIP_REASONS = {
    "polyline": "polyline: COCO instances have no open lines",
    "points": "points: COCO keypoints need a fixed skeleton per category",
}
JSON_ONLY_SPLIT = "default"  # the one file without images holds every split


def file_name(source: ExportSource, options: ExportOptions) -> str:
    version = f"-{source.version_name}" if source.version_name else ""
    return f"{source.dataset_name}{version}-coco.{'zip' if options.include_images else 'json'}"


# One encoder made once: json.dumps() builds a new one per call, a third of the time at 500,000 boxes.
# allow_nan=False: a NaN in stored geometry would make the file unreadable by strict parsers.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
IMAGES_OPEN = ',"images":[\n'
ANNOTATIONS_OPEN = '],"annotations":[\n'
CLOSE = "]}\n"


class _Instances:
    """One instances JSON in the making: its images and annotations arrays in temporary files.

    The JSON has one line for the head (info, licenses, categories), then one line per image and
    one per image's annotations, so that count() reads it a line at a time: a whole-document
    json.load() of 500,000 boxes takes nine times the file's size in memory. An image's annotations
    are encoded in one call, as the encoder's set-up costs as much as a box.
    """

    def __init__(self):
        self.images = tempfile.TemporaryFile()
        self.annotations = tempfile.TemporaryFile()
        self.counts = {"images": 0, "annotations": 0}

    def _add(self, part: str, line: str) -> None:
        getattr(self, part).write(((",\n" if self.counts[part] else "") + line).encode())
        self.counts[part] += 1

    def add_image(self, record: dict) -> None:
        self._add("images", _dumps(record))

    def add_annotations(self, records: list[dict]) -> None:
        """One image's annotations, on one line."""
        self._add("annotations", _dumps(records)[1:-1])

    def write(self, out: BinaryIO, head: dict) -> None:
        """The whole JSON: the head's keys, then the images and annotations arrays."""
        out.write((_dumps(head)[:-1] + IMAGES_OPEN).encode())
        for part, closing in (("images", ANNOTATIONS_OPEN), ("annotations", CLOSE)):
            file = getattr(self, part)
            file.seek(0)
            shutil.copyfileobj(file, out, 1 << 20)
            out.write((("\n" if self.counts[part] else "") + closing).encode())

    def close(self) -> None:
        self.images.close()
        self.annotations.close()


def _annotation_record(annotation, image: ExportImage, category_id: int, coordinates: str, annotation_id: int) -> dict:
    shape, geometry = annotation.shape, annotation.geometry
    if shape == "box" and coordinates == "pixel":
        # The common case, by the hundred thousand: the numbers bbox_in(), area_in() and
        # outline_in() give a pixel box, taken straight from its geometry.
        x, y, w, h = geometry["x"], geometry["y"], geometry["width"], geometry["height"]
        box, area, outline = [x, y, w, h], w * h, [x, y, x + w, y, x + w, y + h, x, y + h]
    else:
        box = list(bbox_in(shape, geometry, image.width, image.height, coordinates))
        area = area_in(shape, geometry, image.width, image.height, coordinates)
        outline = flatten(outline_in(shape, geometry, image.width, image.height, coordinates))
    record = {
        "id": annotation_id, "image_id": image.id, "category_id": category_id, "shape": shape,
        "bbox": box, "area": area, "iscrowd": 0, "segmentation": [outline], "attributes": annotation.attributes,
    }
    if annotation.score is not None or annotation.text is not None:
        _with_extras(record, annotation)
    return record


def _with_extras(record: dict, annotation) -> dict:
    if annotation.score is not None:
        record["score"] = annotation.score
    if annotation.text is not None:
        record["text"] = annotation.text
    return record


def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally:
    labels = labels_by_id(source)
    category_of = {label.id: position for position, label in enumerate(source.labels, start=1)}
    tally = Tally()
    names = UniqueNames()
    archive = zipfile.ZipFile(out, "w", allowZip64=True) if options.include_images else None
    parts: dict[str, _Instances] = {} if archive else {JSON_ONLY_SPLIT: _Instances()}
    # Annotations counted per (label, split) here and added to the tally once: at 500,000 boxes
    # a call per box is a cost of its own.
    written: dict[tuple[str, str], int] = {}
    try:
        annotation_id = 0
        for done, image in enumerate(source.images(), start=1):
            part_key = image.split if archive else JSON_ONLY_SPLIT
            if part_key not in parts:
                parts[part_key] = _Instances()
            part = parts[part_key]
            name = names.claim(part_key, image.name(options.full_path), image.id, tally)
            record = {"id": image.id, "file_name": name, "width": image.width, "height": image.height, "split": image.split}
            classes, annotations = [], []
            for annotation in image.annotations:
                label = labels[annotation.label_id]
                if annotation.shape == "tag":
                    classes.append(_with_extras({"category_id": category_of[label.id], "attributes": annotation.attributes}, annotation))
                elif annotation.shape in AREA_SHAPES:
                    annotation_id += 1
                    annotations.append(_annotation_record(annotation, image, category_of[label.id], options.coordinates, annotation_id))
                else:
                    tally.skip(SKIP_REASONS[annotation.shape])
                    continue
                key = label.name, image.split
                written[key] = written.get(key, 0) + 1
            if annotations:
                part.add_annotations(annotations)
            if classes:
                record["classes"] = classes
            if image.tags:
                record["tags"] = list(image.tags)
            part.add_image(record)
            tally.add_image(image.split)
            if archive:
                copy_original(archive, f"images/{image.split}/{name}", source, image)
            progress(done)
        head = {
            "info": {"description": source.dataset_name, "version": source.version_name or "live", "contributor": "Loupe"},
            "licenses": [],
            "categories": [{"id": category_of[label.id], "name": label.name, "supercategory": ""} for label in source.labels],
        }
        if archive is None:
            parts[JSON_ONLY_SPLIT].write(out, head)
        else:
            for split in sorted(parts, key=SPLITS.index):
                # force_zip64: the JSON's size is not known before it is written, and may pass 2 GiB.
                with archive.open(zip_entry(f"annotations/instances_{split}.json", True), "w", force_zip64=True) as entry:
                    parts[split].write(entry, head)
    finally:
        for part in parts.values():
            part.close()
        if archive:
            archive.close()
    _add_annotations(tally, written)
    return tally


def _add_annotations(tally: Tally, counts: dict[tuple[str, str], int]) -> None:
    for (name, split), n in counts.items():
        tally.annotations += n
        tally.per_label[name] += n
        tally.per_split[split]["annotations"] += n


def count(path: Path, options: ExportOptions) -> Tally:
    tally = Tally()
    if not options.include_images:
        with open(path, encoding="utf-8") as lines:
            _count_instances(lines, None, tally)
        return tally
    with zipfile.ZipFile(path) as archive:
        files = set(archive.namelist())
        images = {name for name in files if name.startswith("images/") and not name.endswith("/")}
        listed = set()
        for name in sorted(files):
            if name.startswith("annotations/instances_") and name.endswith(".json"):
                split = name.removeprefix("annotations/instances_").removesuffix(".json")
                with io.TextIOWrapper(archive.open(name), encoding="utf-8") as lines:
                    listed |= _count_instances(lines, split, tally)
        if listed != images:
            missing, unlisted = sorted(listed - images), sorted(images - listed)
            raise ValueError(f"the COCO archive's images and its instances files differ: missing {missing[:5]}, not listed {unlisted[:5]}")
    return tally


def _count_instances(lines: TextIO, split: str | None, tally: Tally) -> set[str]:
    """Count one instances file, on the layout _Instances writes, into the tally; the image paths
    it names in the archive."""
    head = next(lines, "")
    if not head.endswith(IMAGES_OPEN):
        raise ValueError("not a Loupe COCO export: the first line does not open the images list")
    categories = {category["id"]: category["name"] for category in json.loads(head.removesuffix(IMAGES_OPEN) + "}")["categories"]}
    split_of: dict[int, str] = {}
    paths = set()
    counts: dict[tuple[str, str], int] = {}  # (label, split) -> annotations, added to the tally at the end
    section = "images"
    for line in lines:
        if line in (ANNOTATIONS_OPEN, CLOSE):
            if (section, line) not in (("images", ANNOTATIONS_OPEN), ("annotations", CLOSE)):
                raise ValueError(f"not a Loupe COCO export: {line.strip()!r} out of place")
            section = "ended" if line == CLOSE else "annotations"
            continue
        if section == "ended":
            raise ValueError("not a Loupe COCO export: text after the end of the annotations list")
        line = line.rstrip("\n").removesuffix(",")
        if section == "images":
            record = json.loads(line)
            image_split = record["split"]
            if split is not None and image_split != split:
                raise ValueError(f"image {record['id']} of split {image_split} is in instances_{split}.json")
            if record["id"] in split_of:
                raise ValueError(f"the COCO file lists image {record['id']} twice")
            split_of[record["id"]] = image_split
            paths.add(f"images/{image_split}/{record['file_name']}")
            tally.add_image(image_split)
            for tag in record.get("classes", ()):
                key = categories[tag["category_id"]], image_split
                counts[key] = counts.get(key, 0) + 1
        else:
            for record in json.loads(f"[{line}]"):
                key = categories[record["category_id"]], split_of[record["image_id"]]
                counts[key] = counts.get(key, 0) + 1
    if section != "ended":
        raise ValueError("the COCO file ends before its annotations list does (a partial file)")
    _add_annotations(tally, counts)
    return paths


# ---- import ----------------------------------------------------------------------------------


class _Unusable(ValueError):
    """One annotation that cannot be imported (the message says why)."""


def parse(root: Path) -> Parsed:
    """Every COCO instances JSON under root as images with their annotations (module docstring)."""
    problems: list[tuple[str, str]] = []
    documents = []
    for path in data_files(root, ".json"):
        try:
            documents.append((path, _instances(path)))
        except NotThisFormat as error:
            problems.append((relative(root, path), str(error)))
    if not documents:
        found = "; ".join(f"{where}: {why}" for where, why in problems[:3])
        raise NotThisFormat("no COCO instances JSON (an object with images, annotations and categories lists)" + (f": {found}" if found else " in the upload"))
    labels: dict[str, ImportLabel] = {}
    files = _ImageFiles(root)
    images = [image for path, document in documents for image in _read(root, path, document, files, labels, problems)]
    return Parsed(labels=list(labels.values()), images=images, problems=problems)


def _integer(text: str):
    # Digits past any id or coordinate would make int() refuse (Python's 4,300-digit limit) or
    # overflow float(): such a number becomes a float, checked like any other value.
    return int(text) if len(text) <= 20 else float(text)


def _instances(path: Path) -> dict:
    """The file's document if it is a COCO instances document; NotThisFormat says why not."""
    try:
        with open(path, "rb") as file:
            document = json.load(file, parse_int=_integer)
    except RecursionError:
        raise NotThisFormat("the JSON is nested too deeply to read") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise NotThisFormat(f"not JSON ({error})"[:300]) from None
    if not isinstance(document, dict):
        raise NotThisFormat("the JSON is not an object")
    wrong = [key for key in ("images", "annotations", "categories") if not isinstance(document.get(key), list)]
    if wrong:
        raise NotThisFormat(f"not COCO instances: {', '.join(wrong)} must be lists")
    return document


def _is_id(value) -> bool:
    return type(value) is int


def _shown(value) -> str:
    """A value for a message, short whatever the file holds (a list may be huge, or deeply nested)."""
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'JSON object'} of {len(value)}"
    return repr(value[:50] if isinstance(value, str) else value)


def _read(root: Path, path: Path, document: dict, files: "_ImageFiles", labels: dict, problems: list) -> list[ImportImage]:
    where = relative(root, path)
    subset = path.stem.removeprefix("instances_") if path.stem.startswith("instances_") else None
    # COCO names its subsets by year: val2017 is the validation split.
    file_split = split_named(subset) or split_named(re.sub(r"\d+$", "", subset or ""))
    categories: dict[int, str] = {}
    for k, category in enumerate(document["categories"]):
        name = category.get("name") if isinstance(category, dict) else None
        if not (isinstance(category, dict) and _is_id(category.get("id")) and isinstance(name, str) and name.strip()):
            problems.append((where, f"category #{k} needs an integer id and a name"))
        elif category["id"] in categories:
            problems.append((where, f"category id {category['id']} is given twice"))
        else:
            categories[category["id"]] = name
            labels.setdefault(name, ImportLabel(name, color=_color(category.get("color"))))
    images: dict[int, ImportImage] = {}
    for k, record in enumerate(document["images"]):
        try:
            image_id, image = _image(record, file_split)
        except _Unusable as error:
            problems.append((where, f"image #{k}: {error}"))
            continue
        if image_id in images:
            problems.append((where, f"image id {image_id} is given twice"))
            continue
        image.file = files.find(path, subset, image.path)
        images[image_id] = image
        classes = record.get("classes") or []
        if not isinstance(classes, list):
            image.problems.append("classes must be a list")
            classes = []
        for j, entry in enumerate(classes):
            try:
                image.annotations.append(_extras(entry, categories, "tag", {}))
            except _Unusable as error:
                image.problems.append(f"class #{j}: {error}")
    orphans: Counter = Counter()
    for k, record in enumerate(document["annotations"]):
        if not isinstance(record, dict):
            problems.append((where, f"annotation #{k} is not an object"))
            continue
        image_id = record.get("image_id")
        image = images.get(image_id) if _is_id(image_id) else None
        if image is None:
            orphans[_shown(image_id)] += 1
            continue
        try:
            shape, geometry = _geometry(record, image)
            image.annotations.append(_extras(record, categories, shape, geometry))
        except (_Unusable, MaskProblem) as error:
            name = record.get("id") if _is_id(record.get("id")) else f"#{k}"
            image.problems.append(f"annotation {name}: {error}")
    for image_id, n in orphans.items():
        problems.append((where, f"{n} annotation{'s' if n > 1 else ''} of image {image_id}, which the file does not list"))
    return list(images.values())


def _image(record, file_split: str | None) -> tuple[int, ImportImage]:
    if not isinstance(record, dict):
        raise _Unusable("is not an object")
    if not _is_id(record.get("id")):
        raise _Unusable(f"id must be an integer, not {_shown(record.get('id'))}")
    name = record.get("file_name")
    path = re.sub(r"^(\./|/)+", "", name.replace("\\", "/")) if isinstance(name, str) else ""
    if not path:
        raise _Unusable(f"file_name must name the image, not {_shown(name)}")
    size = {}
    for key in ("width", "height"):
        value = record.get(key)
        if value is not None and not (is_finite_number(value) and value > 0 and value == int(value)):
            raise _Unusable(f"{key} must be a positive integer, not {_shown(value)}")
        size[key] = None if value is None else int(value)
    own = record.get("split")
    split = (split_named(own) if isinstance(own, str) else None) or file_split
    return record["id"], ImportImage(path=path, split=split, units="pixel", **size)


def _geometry(record: dict, image: ImportImage) -> tuple[str, dict]:
    """The Loupe shape and geometry of one COCO object."""
    bbox = record.get("bbox")
    if bbox is not None:
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_finite_number(v) for v in bbox)):
            raise _Unusable("bbox must be four finite numbers [x, y, width, height]")
        if bbox[2] < 0 or bbox[3] < 0:
            raise _Unusable(f"bbox {bbox} has a negative width or height")
    drawn, segmentation = record.get("shape"), record.get("segmentation")
    if drawn in ("box", "circle") or segmentation is None or segmentation == []:
        if bbox is None:
            raise _Unusable("has neither a segmentation nor a bbox")
        x, y, width, height = bbox
        if drawn == "circle":
            # The radius follows the width, as services/shapes.py's percent coordinates have it.
            return "circle", {"cx": x + width / 2, "cy": y + height / 2, "r": width / 2}
        return "box", {"x": x, "y": y, "width": width, "height": height}
    if isinstance(segmentation, list):
        parts = polygon_parts(segmentation)
        points = parts[0] if len(parts) == 1 else join_parts([orient(part) for part in parts])
        return "polygon", {"points": [[x, y] for x, y in points]}
    if isinstance(segmentation, dict):
        height, width, counts = rle_mask(segmentation)
        if image.height not in (None, height) or image.width not in (None, width):
            raise _Unusable(f"RLE size {height}x{width} (height x width) is not the image's {image.height}x{image.width}")
        return "polygon", {"points": mask_polygon(height, width, counts)}
    raise _Unusable("segmentation must be a list of polygons or an RLE object")


def _extras(record, categories: dict[int, str], shape: str, geometry: dict) -> ImportAnnotation:
    """The annotation with its label, attributes, crowd flag, score and text (a COCO object, or one of our classes)."""
    if not isinstance(record, dict):
        raise _Unusable("is not an object")
    category_id = record.get("category_id")
    if not (_is_id(category_id) and category_id in categories):
        raise _Unusable(f"category {_shown(category_id)} is not among the file's categories")
    attributes = record.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise _Unusable("attributes must be an object")
    if record.get("iscrowd") == 1:
        attributes = {**attributes, "iscrowd": True}
    score, text = record.get("score"), record.get("text")
    if score is not None and not is_finite_number(score):
        raise _Unusable(f"score must be a finite number, not {_shown(score)}")
    if text is not None and not isinstance(text, str):
        raise _Unusable("text must be a string")
    return ImportAnnotation(label=categories[category_id], shape=shape, geometry=geometry, attributes=attributes, text=text, score=score)


def _color(value) -> str | None:
    """A category's colour as "#rrggbb", from panopticapi's [r, g, b] or a hex string."""
    if isinstance(value, list) and len(value) == 3 and all(_is_id(c) and 0 <= c <= 255 for c in value):
        return "#{:02x}{:02x}{:02x}".format(*value)
    if isinstance(value, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        return value.lower()
    return None


class _ImageFiles:
    """The image files under the import's folder, found by the paths a COCO file gives."""

    def __init__(self, root: Path):
        self.root = root
        self.files = {relative(root, p): p for p in image_files(root)}
        # Every trailing part of every path ("val2017/a.jpg", "a.jpg") -> the paths that end so.
        self.ending: dict[str, list[str]] = defaultdict(list)
        for path in self.files:
            parts = path.split("/")
            for k in range(len(parts)):
                self.ending["/".join(parts[k:])].append(path)

    def find(self, json_path: Path, subset: str | None, name: str) -> Path | None:
        """The file of an image named `name` in the COCO file at json_path: in images/<subset>/ or
        <subset>/ beside the annotations folder, beside the JSON, then the one file under the
        folder whose path ends in `name`, then in its base name; None when none or several do."""
        here = relative(self.root, json_path.parent)
        tries = [posixpath.join(here, name)]
        if subset:
            tries[:0] = [posixpath.join(base, subset, name) for base in ("images", posixpath.join(here, "..", "images"), posixpath.join(here, ".."))]
        for path in map(posixpath.normpath, tries):
            if path in self.files:
                return self.files[path]
        for ending in (name, posixpath.basename(name)):
            matches = self.ending.get(ending, [])
            if len(matches) > 1 and subset:
                matches = [m for m in matches if subset in m.split("/")]
            if len(matches) == 1:
                return self.files[matches[0]]
        return None
