"""What every format module works with: the records an export reads, its options, and its report.

A format module (formats/<name>.py) is plain Python over these records: it never touches the
database or a request, so it is tested on records made in the test, and an export from the live
dataset and one from a released version are the same code (services/export_source.py and
services/versions.py make the records).

Each format module defines:

    KEY = "coco"                     # the `format` option's value
    TITLE = "COCO instances"         # what the Exports page shows
    DATASET_TYPES = (...)            # the dataset types it can export (DatasetType values)
    OPTIONS = ("coordinates", ...)   # which ExportOptions fields it reads (the page shows these)
    REQUIRED = ("crop_label_id",)    # optional: the options it cannot do without

    def file_name(source: ExportSource, options: ExportOptions) -> str
        # the download's name, e.g. "cats-V002-coco.zip"
    def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally
        # write the file to `out` (a seekable file opened for writing), streaming: images come one
        # at a time from source.images() (or as flat tuples from source.rows(), for a format that
        # needs no more than a row's fields), image bytes from source.open(); never all in memory.
        # Returns what it wrote, counted from the records as it wrote them, with what it could not
        # represent in `skipped` (reason -> count): nothing is left out silently.
    def count(path: Path, options: ExportOptions) -> Tally
        # read the written file back with no help from the records and count what it holds; the
        # export job compares this with export()'s tally and with the database, and fails on a difference.

A format that imports annotations (the module may have only this side, like CVAT's) defines:

    IMPORT_TITLE = "COCO instances (JSON, or a ZIP with images)"   # what the import form shows
    def parse(root: Path) -> Parsed
        # read the format's files under `root` (an uploaded file alone in a folder, or an extracted
        # ZIP of the format's folder layout) into ImportImage records; no database, no request.
        # Raises NotThisFormat when the files are not this format at all; what is wrong with one
        # image or one line goes into that image's (or Parsed's) problems and the rest still imports.
"""

from __future__ import annotations

import posixpath
import shutil
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Collection, Iterable, Iterator, Protocol

# The splits an export names (SPEC section 3), in the order files list them.
SPLITS = ("train", "validation", "test", "unassigned", "review")


@dataclass(frozen=True)
class ExportLabel:
    id: int
    name: str
    color: str
    position: int = 0
    unclassified: bool = False
    attributes: tuple = ()  # the label's attribute definitions (dicts)


@dataclass(frozen=True)
class ExportAnnotation:
    label_id: int
    shape: str  # tag, box, polygon, polyline, points, circle
    geometry: dict  # pixel coordinates of the original image (services/shapes.py)
    attributes: dict = field(default_factory=dict)
    text: str | None = None
    source: str = "human"  # or "prediction", with a score
    score: float | None = None


@dataclass(frozen=True)
class ExportImage:
    id: int
    file_name: str
    folder_path: str  # "" at the dataset's root, else "a/b"
    storage_key: str  # sha256 of the original bytes; source.open() reads them
    width: int
    height: int
    byte_size: int
    format: str  # jpeg, png, webp, bmp, tiff, gif: the decoded format, not the name's extension
    split: str
    state: str
    external_id: str | None = None
    tags: tuple[str, ...] = ()
    annotations: tuple[ExportAnnotation, ...] = ()

    @property
    def path(self) -> str:
        """The image's path inside the dataset: folder and file name."""
        return posixpath.join(self.folder_path, self.file_name) if self.folder_path else self.file_name

    def name(self, full_path: bool) -> str:
        """The file name an export writes: bare, or with the folder path (the Remo option)."""
        return self.path if full_path else self.file_name


@dataclass(frozen=True)
class ExportOptions:
    """The options of SPEC section 9's exports table, parsed and checked (services/exports.py)."""

    format: str
    coordinates: str = "pixel"  # or "percent" (0-100 of the image's width and height)
    full_path: bool = False  # file names with their folder path
    include_images: bool = True  # COCO: a ZIP with the images, or the JSON alone
    masks: bool = False  # VOC: SegmentationClass/SegmentationObject PNGs; ZIP: Masks/ (per type)
    yolo_shapes: str = "boxes"  # or "polygons" (YOLO segmentation)
    test: int = 0  # percent of images in TEST (CSV training), when it assigns sets itself
    validation: int = 0
    url_expiry_s: int = 7 * 24 * 3600  # CSV of URLs: how long the signed links work
    crop_label_id: int | None = None  # crops: whose annotations


# The fields of a row of ExportSource.rows(), in order: an image's, then one annotation's.
ROW_FIELDS = ("image_id", "file_name", "folder_path", "storage_key", "width", "height", "split", "label_id", "shape", "geometry")


class ExportSource(Protocol):
    """One dataset's images to export, filtered, and its labels after the tag map (merged labels
    share one ExportLabel)."""

    dataset_name: str
    dataset_type: str  # a DatasetType value
    version_name: str | None  # "V002", or None for the live dataset
    labels: tuple[ExportLabel, ...]  # in display order

    def images(self) -> Iterator[ExportImage]:
        """Every image of the export in id order, read in keyset pages (memory flat in the count)."""

    def rows(self, fields: Collection[str] = ROW_FIELDS) -> Iterator[tuple]:
        """What images() yields as flat ROW_FIELDS tuples: one per annotation, in the order of images()
        and their annotations, and one with label_id, shape and geometry None for an image with none;
        a field not in `fields` may be None, image_id never is. The cheap path for a format that writes a line per
        annotation from no more than these fields: no record is made per image or annotation."""

    def count(self) -> int:
        """How many images images() yields (the database's count, for the report's check)."""

    def annotation_count(self) -> int:
        """How many annotations those images hold (within the label filter): the export job checks
        that each was written or counted as skipped."""

    def open(self, storage_key: str) -> BinaryIO:
        """The original bytes of an image, as stored (never re-encoded)."""

    def signed_url(self, image: ExportImage, expires_in_s: int) -> str:
        """An absolute URL that downloads the image without signing in, until it expires."""


Progress = Callable[[int], None]  # called with the number of images done so far


def rows_of(images: Iterable[ExportImage]) -> Iterator[tuple]:
    """ExportSource.rows() made from records, for a source whose records cost no more than its rows."""
    for image in images:
        head = (image.id, image.file_name, image.folder_path, image.storage_key, image.width, image.height, image.split)
        if not image.annotations:
            yield (*head, None, None, None)
        for annotation in image.annotations:
            yield (*head, annotation.label_id, annotation.shape, annotation.geometry)


@dataclass
class Tally:
    """What an export file holds: images and annotations, per label name and per split.

    export() builds one from the records it wrote; count() builds one from the file; the export
    job compares the two, and both with the database.
    """

    images: int = 0
    annotations: int = 0
    per_label: Counter = field(default_factory=Counter)  # label name -> annotations
    per_split: dict = field(default_factory=lambda: defaultdict(lambda: {"images": 0, "annotations": 0}))
    skipped: Counter = field(default_factory=Counter)  # reason -> annotations not written
    renamed: int = 0  # images written under another name, their own being taken (UniqueNames)

    def add_image(self, split: str) -> None:
        self.images += 1
        self.per_split[split]["images"] += 1

    def add_annotation(self, label_name: str, split: str) -> None:
        self.annotations += 1
        self.per_label[label_name] += 1
        self.per_split[split]["annotations"] += 1

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def as_dict(self) -> dict:
        return {
            "images": self.images, "annotations": self.annotations,
            "per_label": dict(sorted(self.per_label.items())),
            "per_split": {s: dict(v) for s, v in sorted(self.per_split.items(), key=lambda kv: _split_order(kv[0]))},
            "skipped": dict(sorted(self.skipped.items())),
            # Only formats that rename say so, so the other formats' reports stay as they were.
            **({"renamed": self.renamed} if self.renamed else {}),
        }

    def differences(self, other: "Tally") -> list[str]:
        """What differs between this tally and another, in words (empty: they agree); skips aside."""
        mine, theirs = self.as_dict(), other.as_dict()
        problems = []
        for key in ("images", "annotations"):
            if mine[key] != theirs[key]:
                problems.append(f"{key}: {mine[key]} written, {theirs[key]} in the file")
        for name in sorted(set(mine["per_label"]) | set(theirs["per_label"])):
            a, b = mine["per_label"].get(name, 0), theirs["per_label"].get(name, 0)
            if a != b:
                problems.append(f"label {name!r}: {a} annotations written, {b} in the file")
        for split in sorted(set(mine["per_split"]) | set(theirs["per_split"]), key=_split_order):
            a, b = mine["per_split"].get(split), theirs["per_split"].get(split)
            if a != b:
                problems.append(f"split {split}: {a or 'nothing'} written, {b or 'nothing'} in the file")
        return problems


def _split_order(split: str) -> int:
    return SPLITS.index(split) if split in SPLITS else len(SPLITS)


def labels_by_id(source: ExportSource) -> dict[int, ExportLabel]:
    return {label.id: label for label in source.labels}


class UniqueNames:
    """Names made unique inside each folder of an archive, deterministically for images in id order.

    The first image keeps its name; a later one whose name repeats in the folder (compared without
    case, as on Windows and macOS file systems; with `by_stem`, without the extension, for formats
    whose side files are named by the stem, like YOLO's labels) gets its image id: "cat~1234.jpg".
    """

    def __init__(self, by_stem: bool = False):
        self.by_stem = by_stem
        self.taken: set[tuple[str, str]] = set()

    def _key(self, folder: str, name: str) -> tuple[str, str]:
        return folder, (posixpath.splitext(name)[0] if self.by_stem else name).casefold()

    def claim(self, folder: str, name: str, image_id: int, tally: Tally) -> str:
        """The name an image is written under in `folder`, counting a rename in the tally."""
        unique, attempt = name, 0
        while self._key(folder, unique) in self.taken:
            attempt += 1
            stem, extension = posixpath.splitext(name)
            unique = f"{stem}~{image_id}{'' if attempt == 1 else f'-{attempt}'}{extension}"
        if unique != name:
            tally.renamed += 1
        self.taken.add(self._key(folder, unique))
        return unique


# Entries carry a fixed time so that exporting the same data twice gives the same archive.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def zip_entry(name: str, compress: bool, size: int = 0) -> zipfile.ZipInfo:
    """An archive entry: deflated (text) or stored (images are compressed already). A known `size`
    lets zipfile decide on ZIP64 before writing a file over 2 GiB."""
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    info.file_size = size
    return info


def copy_original(archive: zipfile.ZipFile, name: str, source: ExportSource, image: ExportImage) -> None:
    """Copy an image's stored bytes into the archive as they are, in chunks, never whole in memory."""
    with source.open(image.storage_key) as original, archive.open(zip_entry(name, False, image.byte_size), "w") as entry:
        shutil.copyfileobj(original, entry, 1 << 20)


# ---- the import side ------------------------------------------------------------------------

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


class NotThisFormat(ValueError):
    """The files are not this format at all (the import fails with this message, importing nothing)."""


@dataclass
class ImportAnnotation:
    label: str  # the label's name as the file gives it; labels are matched by name, created as needed
    shape: str  # one of services.shapes.SHAPES
    geometry: dict  # services/shapes.py's keys, in the units of its ImportImage
    attributes: dict = field(default_factory=dict)
    text: str | None = None
    score: float | None = None  # a model's confidence: the annotation is a prediction (a pre-label)


@dataclass
class ImportImage:
    """One image's annotations as the file gives them."""

    path: str  # the image as the file names it, "/"-separated: matched by path, then by file name
    annotations: list[ImportAnnotation] = field(default_factory=list)
    split: str | None = None  # one of SPLITS where the layout says (ImageSets, a subset folder, ...)
    width: int | None = None  # as the file declares them; None: the image's own
    height: int | None = None
    units: str = "pixel"  # or "fraction": 0-1 of the width and height (YOLO; Label Studio's percent / 100)
    file: Path | None = None  # the image itself under root, when the upload holds it: imported too
    problems: list[str] = field(default_factory=list)  # why this image's annotations cannot be applied


@dataclass(frozen=True)
class ImportLabel:
    name: str
    attributes: tuple = ()  # attribute definitions in Loupe's shape (services/labels.py), if the file has them
    color: str | None = None


@dataclass
class Parsed:
    labels: list[ImportLabel]  # every label the file defines, used or not, in its order
    images: Iterable[ImportImage]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (where, why): lines or files that could not be read


def added_by_archiver(parts) -> bool:
    """Whether a path (its parts) is a file an archiver or a file manager adds beside the data:
    macOS's __MACOSX/ and ._ files, .DS_Store and other dot files and folders, Windows' Thumbs.db."""
    names = [part for part in parts if part not in ("", ".", "..")]  # "./a.jpg" is a.jpg; ".." is refused elsewhere
    return bool(names) and (names[-1] == "Thumbs.db" or any(name.startswith(".") or name == "__MACOSX" for name in names))


def hidden(root: Path, path: Path) -> bool:
    return added_by_archiver(path.relative_to(root).parts)


def data_files(root: Path, *suffixes: str) -> list[Path]:
    """The upload's files under root (those with one of the suffixes, if given), in path order,
    without what archivers add."""
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and (not suffixes or p.suffix.lower() in suffixes) and not hidden(root, p)
    )


def image_files(root: Path) -> list[Path]:
    """The upload's image files (what an import of a folder layout looks for)."""
    return data_files(root, *IMAGE_EXTENSIONS)


class ImageFinder:
    """The upload's image files, found by a name relative to a folder, else by a base name no other
    image of the upload has."""

    def __init__(self, root: Path):
        self.root = root
        self.paths = set()
        self.by_name = defaultdict(list)
        for path in image_files(root):
            self.paths.add(relative(root, path))
            self.by_name[path.name].append(path)

    def find(self, folder: Path, name: str) -> Path | None:
        # Looked up in the index, never opened as given: a name like ../../etc/x.jpg finds nothing.
        inside = posixpath.normpath(posixpath.join(relative(self.root, folder), name))
        if inside in self.paths:
            return self.root / inside
        matches = self.by_name.get(posixpath.basename(name), [])
        return matches[0] if len(matches) == 1 else None


def relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "validation", "valid": "validation", "validation": "validation",
    "test": "test", "testing": "test",
    "unassigned": "unassigned", "review": "review",
}


def split_named(name: str | None) -> str | None:
    """The split a layout's subset name means ("val", "Validation", "valid"), or None."""
    return SPLIT_NAMES.get((name or "").strip().casefold())
