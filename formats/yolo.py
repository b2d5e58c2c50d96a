"""YOLO in the Ultralytics layout: a ZIP with data.yaml, images/<dir>/ and labels/<dir>/.

    data.yaml                   train, val, test (and review) image folders, nc, names (index -> name)
    images/<dir>/<file_name>    the original bytes, stored as they are
    labels/<dir>/<stem>.txt     one line per shape, coordinates normalized to 0-1 of the image

Folders: train -> train, validation -> val, test -> test; unassigned images (no split chosen yet)
go to `unassigned` and review images to `review`, so an import gets every split back. `train` lists
images/train and images/unassigned: an image nobody held out trains. `review` is a key of its own
that Ultralytics ignores: held out for a person, not trained on. Ultralytics requires `val`; with no
validation images it names the training folders. data.yaml has no `path`, so Ultralytics resolves
the folders against the file's own folder (a relative `path` would be taken inside its datasets_dir).

Lines: "class cx cy w h" (yolo_shapes "boxes": a polygon or circle by its bounding box) or
"class x1 y1 x2 y2 ..." (yolo_shapes "polygons": a box by its four corners, a circle by its outline,
services/shapes.py), clipped to the image (Ultralytics refuses a whole image for one value outside
0-1; validation lets shapes poke half a pixel out and circles further). The class is the label's
place in source.labels. Whole-image tags, polylines and points have no YOLO detection or
segmentation line: they are left out and counted in the tally's `skipped`. An image without
shapes gets an empty label file, a background image for Ultralytics.

A label file sits where Ultralytics looks for it: the image's path with its last "/images/" made
"/labels/" and its extension ".txt". Names repeating inside a folder (same stem, without case:
labels are named by the stem) are made unique with the image id (formats.base.UniqueNames).

Import (parse) reads a ZIP in any of the common layouts, its class names file deciding which (the
outermost one, possibly a folder down; data.yaml before obj.data and obj.names before classes.txt):
    data.yaml   Ultralytics: names (a list, or index -> name; nc alone names them class_<i>), and
                <split>/images + <split>/labels or images/<split> + labels/<split> (our export's)
    obj.data    Darknet and CVAT's YOLO 1.1: obj.names, list files (train = data/train.txt) whose
                paths carry darknet's "data/" prefix, and obj_<split>_data/ with labels beside images
    classes.txt images/ and labels/ (Label Studio's export), or labels beside the images
A lone file is not enough: a label file cannot say which classes its numbers are or which image it
describes, so without a names file the upload is not this format (a names file alone gives labels
and no images). Every image under the names file's folder is imported, its path relative to its
images folder (or to obj_<split>_data/), its split from a folder's name (train, val, valid, test,
unassigned, review) or else from the data.yaml key or Darknet list that names it: data.yaml's paths
are often wrong (Roboflow writes "../valid/images" for val/images), so folders decide first. The
label file is where Ultralytics looks for it (label_path), else the .txt beside the image; an image
with none has no annotations. A line is "class cx cy w h" (a box), "class x1 y1 ... xn yn" (n >= 3,
a polygon), either followed by a score (a prediction, as Ultralytics' save_conf writes it), in
fractions of the image. A line that is none of these is a problem of its image; the others import.
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path
from typing import BinaryIO

import yaml

from formats.base import (
    ExportImage, ExportOptions, ExportSource, ImportAnnotation, ImportImage, ImportLabel, NotThisFormat, Parsed, Progress, Tally,
    UniqueNames, copy_original, image_files, labels_by_id, relative, split_named, zip_entry,
)
from services.shapes import AREA_SHAPES, bbox_in, flatten, outline_in

KEY = "yolo"
TITLE = "YOLO (Ultralytics)"
IMPORT_TITLE = "YOLO (a ZIP with data.yaml, obj.data or classes.txt, the images and their labels)"
DATASET_TYPES = ("multilabel", "detection", "segmentation", "anomaly")
OPTIONS = ("full_path", "yolo_shapes")

FOLDERS = {"train": "train", "validation": "val", "test": "test", "unassigned": "unassigned", "review": "review"}
SPLIT_OF_FOLDER = {folder: split for split, folder in FOLDERS.items()}
TRAINED = ("train", "unassigned")
SKIP_REASONS = {
    "tag": "tag: YOLO detection has no whole-image class",
    "polyline": "polyline: YOLO has no open lines",
    "points": "points: YOLO pose needs a fixed keypoint layout per class",
}
# 12 significant digits: an import gets pixels back well within 1e-6 on a 10,000 px image.
DIGITS = ".12g"


def file_name(source: ExportSource, options: ExportOptions) -> str:
    version = f"-{source.version_name}" if source.version_name else ""
    return f"{source.dataset_name}{version}-yolo.zip"


def label_path(image_path: str) -> str:
    """Where Ultralytics looks for an image's labels (its img2label_paths rule)."""
    head, _, tail = ("/" + image_path).rpartition("/images/")
    return (head + "/labels/" + tail).lstrip("/").rsplit(".", 1)[0] + ".txt"


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _line(annotation, image: ExportImage, class_index: int, polygons: bool) -> str | None:
    """The annotation's label line, or None if nothing of it is inside the image."""
    shape, geometry = annotation.shape, annotation.geometry
    if polygons:
        vertices = [(_clip(x), _clip(y)) for x, y in outline_in(shape, geometry, image.width, image.height, "normalized")]
        values = flatten(vertices)
    else:
        x, y, w, h = bbox_in(shape, geometry, image.width, image.height, "normalized")
        x0, y0, x1, y1 = _clip(x), _clip(y), _clip(x + w), _clip(y + h)
        if x1 <= x0 or y1 <= y0:
            return None
        values = [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]
    return " ".join([str(class_index), *(format(v, DIGITS) for v in values)])


def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally:
    labels = labels_by_id(source)
    class_of = {label.id: index for index, label in enumerate(source.labels)}
    polygons = options.yolo_shapes == "polygons"
    tally = Tally()
    names = UniqueNames(by_stem=True)
    folders_used = set()
    with zipfile.ZipFile(out, "w", allowZip64=True) as archive:
        for done, image in enumerate(source.images(), start=1):
            folder = FOLDERS[image.split]
            name = names.claim(folder, image.name(options.full_path), image.id, tally)
            path = f"images/{folder}/{name}"
            lines = []
            for annotation in image.annotations:
                label = labels[annotation.label_id]
                line = _line(annotation, image, class_of[label.id], polygons) if annotation.shape in AREA_SHAPES else None
                if line is None:
                    tally.skip(SKIP_REASONS.get(annotation.shape, f"{annotation.shape}: outside the image"))
                    continue
                lines.append(line)
                tally.add_annotation(label.name, image.split)
            copy_original(archive, path, source, image)
            archive.writestr(zip_entry(label_path(path), True), "".join(line + "\n" for line in lines))
            folders_used.add(folder)
            tally.add_image(image.split)
            progress(done)
        if not folders_used & set(TRAINED):
            # data.yaml must name a train folder: an empty one, as there are no training images.
            empty_train = zip_entry("images/train/", False)
            empty_train.external_attr = 0o40755 << 16 | 0x10  # a directory (MS-DOS flag too)
            archive.writestr(empty_train, b"")
        archive.writestr(zip_entry("data.yaml", True), _data_yaml(source, folders_used))
    return tally


def _data_yaml(source: ExportSource, folders_used: set[str]) -> str:
    def listed(folders):
        paths = [f"images/{folder}" for folder in folders if folder in folders_used]
        return paths[0] if len(paths) == 1 else paths

    # Each key gets a list of its own: one list under two keys would be written as a YAML alias.
    data = {"train": listed(TRAINED) or "images/train", "val": listed(("val",)) or listed(TRAINED) or "images/train"}
    for folder in ("test", "review"):
        if folder in folders_used:
            data[folder] = f"images/{folder}"
    data["nc"] = len(source.labels)
    data["names"] = {index: label.name for index, label in enumerate(source.labels)}
    version = f" {source.version_name}" if source.version_name else ""
    head = (
        f"# {source.dataset_name}{version}, exported by Loupe for Ultralytics YOLO.\n"
        "# No `path`: the folders are relative to this file. `review` is held out, not trained on.\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def count(path: Path, options: ExportOptions) -> Tally:
    polygons = options.yolo_shapes == "polygons"
    tally = Tally()
    with zipfile.ZipFile(path) as archive:
        entries = archive.namelist()
        files = [name for name in entries if not name.endswith("/")]
        data = yaml.safe_load(archive.read("data.yaml"))
        names = data["names"]
        names = [names[index] for index in range(len(names))]  # a list or an index -> name mapping
        if data.get("nc", len(names)) != len(names):
            raise ValueError(f"data.yaml says nc: {data['nc']} but names {len(names)} classes")
        for key in ("train", "val", "test", "review"):
            for folder in [data[key]] if isinstance(data.get(key), str) else data.get(key) or ():
                if not any(name.startswith(folder + "/") for name in entries):
                    raise ValueError(f"data.yaml's {key} folder {folder} is not in the archive")
        under_images = [name for name in files if name.startswith("images/")]
        # A folder named "images" inside a full path puts labels under images/ too (label_path()).
        label_files = {label_path(name) for name in under_images}
        images = [name for name in under_images if name not in label_files]
        labels = {name for name in files if name.startswith("labels/") or name in label_files}
        for image in images:
            folder = image.split("/")[1]
            if folder not in SPLIT_OF_FOLDER:
                raise ValueError(f"{image} is in images/{folder}, which is no split's folder")
            split = SPLIT_OF_FOLDER[folder]
            label_file = label_path(image)
            if label_file not in labels:
                raise ValueError(f"{image} has no label file {label_file}")
            labels.discard(label_file)
            tally.add_image(split)
            for number, line in enumerate(archive.read(label_file).decode().splitlines(), start=1):
                class_index = _check_line(line, polygons, len(names), f"{label_file}:{number}")
                tally.add_annotation(names[class_index], split)
        if labels:
            raise ValueError(f"label files without an image: {sorted(labels)[:5]}")
    return tally


def _check_line(line: str, polygons: bool, class_count: int, where: str) -> int:
    """The class index of a label line, checked: normalized values, the shape's number of them."""
    fields = line.split()
    if not fields or not fields[0].isdigit() or int(fields[0]) >= class_count:
        raise ValueError(f"{where}: the class is not one of data.yaml's {class_count} names: {line!r}")
    values = [float(value) for value in fields[1:]]
    if polygons and (len(values) < 6 or len(values) % 2) or not polygons and len(values) != 4:
        raise ValueError(f"{where}: {len(values)} values is not a {'polygon' if polygons else 'box'}")
    if not all(0.0 <= value <= 1.0 for value in values):
        raise ValueError(f"{where}: a value outside 0-1: {line!r}")
    return int(fields[0])


# ---- import ----------------------------------------------------------------------------------

# Class names files, the first in this order deciding the layout where two sit in one folder.
NAMES_FILES = ("data.yaml", "data.yml", "obj.data", "obj.names", "classes.txt")
DARKNET_PREFIX = "data/"  # obj.data's and the lists' paths start at darknet's data folder
DARKNET_FOLDER = re.compile(r"obj_(.+)_data")
_CLASS = re.compile(r"[0-9]+")
SHOWN = 100  # characters of a bad line quoted in its problem


def parse(root: Path) -> Parsed:
    """Images, boxes, polygons and splits of a YOLO upload (module docstring)."""
    names_file = _names_file(root)
    base, problems = names_file.parent, []
    if names_file.name.lower() in ("data.yaml", "data.yml"):
        names, listed = _read_yaml(root, names_file, problems)
    else:
        names, listed = _read_darknet(root, names_file)
    used_labels = set()
    images = []
    for path in image_files(base):
        image_path, folder_split = _place(relative(base, path))
        image = ImportImage(path=image_path, split=folder_split or listed.split_of(path), units="fraction", file=path)
        label_file = _label_file(base, path)
        if label_file is not None:
            used_labels.add(label_file)
            _read_labels(root, label_file, names, image)
        images.append(image)
    for stray in sorted(p for p in base.rglob("*.txt") if p not in used_labels and _is_label_folder(relative(base, p))):
        problems.append((relative(root, stray), "a label file with no image of the same name"))
    return Parsed(labels=[ImportLabel(name) for name in dict.fromkeys(names.values())], images=images, problems=problems)


class _Listed:
    """The splits data.yaml's keys or Darknet's list files give: folders and single images."""

    def __init__(self):
        self.places: dict[Path, str] = {}  # resolved folder or image -> split, the first naming it deciding

    def add(self, places: list[Path], split: str) -> None:
        for place in places:
            self.places.setdefault(place, split)

    def split_of(self, image: Path) -> str | None:
        resolved = image.resolve()
        return next((self.places[p] for p in (resolved, *resolved.parents) if p in self.places), None)


def _names_file(root: Path) -> Path:
    found = [p for p in root.rglob("*") if p.name.lower() in NAMES_FILES and p.is_file()]
    if not found:
        raise NotThisFormat("Not YOLO: no data.yaml, obj.data, obj.names or classes.txt, so the class numbers of the label "
                            "files have no names (a label file alone cannot be imported: upload a ZIP of the dataset)")
    return min(found, key=lambda p: (len(p.parts), NAMES_FILES.index(p.name.lower()), str(p)))


def _text(root: Path, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as error:
        raise NotThisFormat(f"Not YOLO: {relative(root, path)} is not UTF-8 text ({error})") from None


def _name(value, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        raise NotThisFormat(f"Not YOLO: {where} is not a class name: {str(value)[:SHOWN]!r}")
    return str(value).strip()


def _read_yaml(root: Path, path: Path, problems: list) -> tuple[dict[int, str], _Listed]:
    """Class names, and the folders or listed images data.yaml's split keys name."""
    where = relative(root, path)
    try:
        data = yaml.safe_load(_text(root, path))
    except yaml.YAMLError as error:
        raise NotThisFormat(f"Not YOLO: {where} is not YAML ({str(error)[:200]})") from None
    if not isinstance(data, dict) or ("names" not in data and "nc" not in data):
        raise NotThisFormat(f"Not YOLO: {where} has neither names nor nc")
    names, nc = data.get("names"), data.get("nc")
    if isinstance(names, list):
        names = {index: _name(name, f"{where} names[{index}]") for index, name in enumerate(names)}
    elif isinstance(names, dict):
        if not all(type(k) is int or isinstance(k, str) and _CLASS.fullmatch(k) for k in names):
            raise NotThisFormat(f"Not YOLO: {where} names maps something other than class numbers to names")
        names = {int(k): _name(v, f"{where} names[{k}]") for k, v in sorted(names.items(), key=lambda kv: int(kv[0]))}
    elif names is None and type(nc) is int and nc >= 0:
        names = {index: f"class_{index}" for index in range(nc)}  # what Ultralytics calls them
    else:
        raise NotThisFormat(f"Not YOLO: {where} names is neither a list nor a mapping of class numbers to names")
    if nc is not None and nc != len(names):
        problems.append((where, f"nc is {nc!r} but names has {len(names)} classes: the names are used"))
    homes = [path.parent]
    if isinstance(data.get("path"), str) and not Path(data["path"]).is_absolute():
        homes.insert(0, path.parent / data["path"])
    listed = _Listed()
    for key, value in data.items():
        split = split_named(key) if isinstance(key, str) and key not in ("path", "names", "nc") else None
        for entry in (value if isinstance(value, list) else [value]) if split else ():
            if isinstance(entry, str):
                listed.add(_resolve(root, homes, entry), split)
    return names, listed


def _resolve(root: Path, homes: list[Path], entry: str, listing: bool = True) -> list[Path]:
    """What a path of data.yaml, obj.data or a list file names: a folder, an image, or (`listing`)
    the images of a .txt list. Tried against each home, as written and without leading "../" or
    darknet's "data/": such paths were written for another working folder."""
    trimmed = re.sub(r"^(\.\./|\./)+", "", entry.strip().replace("\\", "/"))
    for variant in dict.fromkeys((entry.strip(), trimmed, trimmed.removeprefix(DARKNET_PREFIX))):
        for home in homes:
            candidate = home / variant
            try:
                if not (variant and candidate.exists() and candidate.resolve().is_relative_to(root.resolve())):
                    continue
            except (OSError, ValueError):  # a name too long, or holding a NUL
                continue
            if listing and candidate.is_file() and candidate.suffix.lower() == ".txt":
                lines = candidate.read_text(encoding="utf-8-sig", errors="replace").splitlines()
                list_homes = [candidate.parent, *homes]  # its paths are relative to it, or to the dataset
                return [found for line in lines if line.strip() for found in _resolve(root, list_homes, line, listing=False)]
            return [candidate.resolve()]
    return []


def _read_darknet(root: Path, path: Path) -> tuple[dict[int, str], _Listed]:
    """Class names from obj.names or classes.txt; with obj.data, its names file and its split lists."""
    base, listed = path.parent, _Listed()
    if path.name.lower() == "obj.data":
        names_path = base / "obj.names"
        for line in _text(root, path).splitlines():
            key, _, value = (part.strip() for part in line.partition("="))
            if key == "names" and value:
                names_path = next(iter(_resolve(root, [base], value, listing=False)), names_path)
            elif split_named(key) and value:
                listed.add(_resolve(root, [base], value), split_named(key))
        if not names_path.is_file():
            raise NotThisFormat(f"Not YOLO: {relative(root, path)} names no class names file that is in the upload")
    else:
        names_path = path
        if path.name.lower() == "obj.names":  # Darknet without obj.data: its usual list files
            for key in ("train", "valid", "val", "test"):
                listed.add(_resolve(root, [base], f"{key}.txt"), split_named(key))
    names = [line.strip() for line in _text(root, names_path).splitlines()]
    return dict(enumerate(name for name in names if name)), listed


def _place(path: str) -> tuple[str, str | None]:
    """The image's path inside its images folder and the split its folders name:
    images/<split>/a.jpg, <split>/images/a.jpg, images/a.jpg, obj_<split>_data/a.jpg, <split>/a.jpg."""
    *folders, name = path.split("/")
    if "images" in folders:
        at = folders.index("images")
        if at + 1 < len(folders) and split_named(folders[at + 1]):
            return "/".join(folders[at + 2:] + [name]), split_named(folders[at + 1])
        return "/".join(folders[at + 1:] + [name]), split_named(folders[at - 1]) if at else None
    if folders:
        darknet = DARKNET_FOLDER.fullmatch(folders[0])
        split = split_named(darknet.group(1) if darknet else folders[0])
        if split or darknet:
            return "/".join(folders[1:] + [name]), split
    return path, None


def _label_file(base: Path, image: Path) -> Path | None:
    path = relative(base, image)
    candidates = [base / label_path(path)] if "/images/" in "/" + path else []
    candidates.append(image.with_suffix(".txt"))
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def _is_label_folder(path: str) -> bool:
    folders = path.split("/")[:-1]
    return "labels" in folders or any(DARKNET_FOLDER.fullmatch(folder) for folder in folders)


def _read_labels(root: Path, label_file: Path, names: dict[int, str], image: ImportImage) -> None:
    where = relative(root, label_file)
    try:
        text = label_file.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as error:
        image.problems.append(f"{where}: not UTF-8 text ({error})")
        return
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        read = _annotation(line.split(), names)
        if isinstance(read, str):
            image.problems.append(f"{where}:{line_number}: {read}: {line.strip()[:SHOWN]!r}")
        else:
            image.annotations.append(read)


def _annotation(fields: list[str], names: dict[int, str]) -> ImportAnnotation | str:
    """The line's annotation, or why it is none."""
    if not _CLASS.fullmatch(fields[0]):
        return f"the class {fields[0][:20]!r} is not a class number"
    if int(fields[0]) not in names:
        return f"class {int(fields[0])} is not one of the {len(names)} classes"
    try:
        values = [float(value) for value in fields[1:]]
    except ValueError:
        return "a value is not a number"
    if not all(map(math.isfinite, values)):
        return "a value is not a finite number"
    score = values.pop() if len(values) == 5 or len(values) >= 7 and len(values) % 2 else None
    if score is not None and not 0 <= score <= 1:
        return f"the score {score} is not from 0 to 1"
    label = names[int(fields[0])]
    if len(values) == 4:
        cx, cy, w, h = values
        if w <= 0 or h <= 0:
            return "a box's width and height must be greater than 0"
        return ImportAnnotation(label, "box", {"x": cx - w / 2, "y": cy - h / 2, "width": w, "height": h}, score=score)
    if len(values) >= 6:
        return ImportAnnotation(label, "polygon", {"points": [list(point) for point in zip(values[::2], values[1::2])]}, score=score)
    return f"{len(fields) - 1} values after the class: a box has 4, a polygon 6 or more (each one more with a score)"
