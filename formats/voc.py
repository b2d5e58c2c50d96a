"""Pascal VOC: a ZIP in the VOCdevkit layout.

    Annotations/<id>.xml               per image: folder, filename, size, segmented, one <object> per
                                       box, polygon or circle (name, pose Unspecified, truncated 0,
                                       difficult 0, bndbox)
    JPEGImages/<id><ext>               the original bytes under their own extension (VOC's folder
                                       name, whatever the format)
    ImageSets/Main/<set>.txt           the ids of each split: train, val (validation), test, and
                                       trainval; unassigned and review images in lists of their own
    ImageSets/Main/<class>_<set>.txt   whole-image classes (tags), VOC's classification lists:
                                       "<id>  1" for an image of the class, "<id> -1" otherwise
    SegmentationClass/<id>.png,        with the masks option, for images with regions: palette PNGs
    SegmentationObject/<id>.png        in the VOC colormap (formats/masks.py); a polygon or circle is
                                       its bounding box in the XML and its outline in the masks
    ImageSets/Segmentation/<set>.txt   the ids that have masks
    labelmap.txt                       CVAT's VOC label map: "name:r,g,b::" per label, the colour
                                       being the label's index in SegmentationClass

An id is the image's stem (with full_path, under its folders), unique over the export.

bndbox is in VOC's 1-based pixel numbering: xmin is the number of the first pixel column a box
covers and xmax that of its last, so a box of x, y, width, height in Loupe's continuous pixel
coordinates is xmin = x + 1, xmax = x + width (the whole image is 1..width) and reads back as
x = xmin - 1, width = xmax - xmin + 1. Whole numbers are written as such, other values in full
(a float repr), so the round trip is exact rather than rounded to the pixel.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, TextIO
from urllib.parse import unquote
from xml.etree import ElementTree

from formats.base import ExportImage, ExportOptions, ExportSource, Progress, Tally, UniqueNames, copy_original, labels_by_id, zip_entry
from formats.folders_zip import dataset_folders, number, safe_segment, spool
from formats.masks import draw, label_values, regions, voc_colormap, voc_png
from services.shapes import AREA_SHAPES, bbox

KEY = "voc"
TITLE = "Pascal VOC"
DATASET_TYPES = ("classification", "multilabel", "detection", "segmentation", "anomaly")
OPTIONS = ("full_path", "masks")

SETS = {"train": "train", "validation": "val", "test": "test", "unassigned": "unassigned", "review": "review"}
SPLIT_OF_SET = {voc_set: split for split, voc_set in SETS.items()}
TRAINVAL = ("train", "val")
EXTRA_SETS = ("unassigned", "review")  # not VOC's: their lists exist only when used
SKIP_REASONS = {
    "polyline": "polyline: Pascal VOC has no open lines",
    "points": "points: Pascal VOC has no points",
}
PALETTE_MAX = 255  # a palette PNG's largest index
# Characters XML 1.0 cannot carry, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def file_name(source: ExportSource, options: ExportOptions) -> str:
    version = f"-{source.version_name}" if source.version_name else ""
    return f"{source.dataset_name}{version}-voc.zip"


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def voc_box(shape: str, geometry: dict) -> tuple[str, str, str, str]:
    """xmin, ymin, xmax, ymax of the shape's bounding box, 1-based and inclusive (module docstring)."""
    x, y, width, height = bbox(shape, geometry)
    return number(x + 1), number(y + 1), number(x + width), number(y + height)


def _xml(image: ExportImage, name: str, objects: list[tuple[str, tuple]], segmented: bool, database: str) -> bytes:
    root = ElementTree.Element("annotation")
    ElementTree.SubElement(root, "folder").text = "JPEGImages"
    ElementTree.SubElement(root, "filename").text = name
    ElementTree.SubElement(ElementTree.SubElement(root, "source"), "database").text = _text(database)
    size = ElementTree.SubElement(root, "size")
    # Loupe keeps no channel count; 3 is what VOC readers decode every image to.
    for tag, value in (("width", image.width), ("height", image.height), ("depth", 3)):
        ElementTree.SubElement(size, tag).text = str(value)
    ElementTree.SubElement(root, "segmented").text = "1" if segmented else "0"
    for label_name, corners in objects:
        element = ElementTree.SubElement(root, "object")
        for tag, value in (("name", _text(label_name)), ("pose", "Unspecified"), ("truncated", "0"), ("difficult", "0")):
            ElementTree.SubElement(element, tag).text = value
        box = ElementTree.SubElement(element, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), corners):
            ElementTree.SubElement(box, tag).text = value
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8")


def export(source: ExportSource, options: ExportOptions, out: BinaryIO, progress: Progress) -> Tally:
    tally = Tally()
    labels = labels_by_id(source)
    values = label_values(source)
    index_of = {label.id: i for i, label in enumerate(source.labels)}
    names = UniqueNames(by_stem=True)
    # Per VOC set, "<id>\t<segmented>\t<tag label indices>" per image, for the lists written last.
    lists: dict[str, TextIO] = {}
    tagged = False
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        try:
            for done, image in enumerate(source.images(), start=1):
                folder = "/".join(dataset_folders(image, options))
                name = posixpath.join(folder, names.claim(folder, safe_segment(image.file_name), image.id, tally))
                image_id = posixpath.splitext(name)[0]
                copy_original(archive, f"JPEGImages/{name}", source, image)
                objects, tags = [], []
                for annotation in image.annotations:
                    label_name = labels[annotation.label_id].name
                    if annotation.shape == "tag":
                        tags.append(str(index_of[annotation.label_id]))
                    elif annotation.shape in AREA_SHAPES:
                        objects.append((label_name, voc_box(annotation.shape, annotation.geometry)))
                    else:
                        tally.skip(SKIP_REASONS[annotation.shape])
                        continue
                    tally.add_annotation(label_name, image.split)
                segmented = bool(options.masks and objects) and _write_masks(archive, image, image_id, values, tally)
                archive.writestr(zip_entry(f"Annotations/{image_id}.xml", True), _xml(image, name, objects, segmented, source.dataset_name))
                voc_set = SETS[image.split]
                if voc_set not in lists:
                    lists[voc_set] = spool()
                lists[voc_set].write(f"{image_id}\t{int(segmented)}\t{','.join(tags)}\n")
                tagged = tagged or bool(tags)
                tally.add_image(image.split)
                progress(done)
            _write_lists(archive, lists, [safe_segment(label.name) for label in source.labels] if tagged else [])
            archive.writestr(zip_entry("labelmap.txt", True), _labelmap(source))
        finally:
            for spooled in lists.values():
                spooled.close()
    return tally


def _write_masks(archive: zipfile.ZipFile, image: ExportImage, image_id: str, values: dict[int, int], tally: Tally) -> bool:
    """Write the image's two masks; False (none written) when they need more than a palette's indices."""
    shown = regions(image)
    if len(shown) > PALETTE_MAX or max(values.values()) > PALETTE_MAX:
        tally.skip("masks: a VOC palette PNG holds 255 labels and 255 objects (the image has none)")
        return False
    classes, objects = draw(image, shown, values)
    archive.writestr(zip_entry(f"SegmentationClass/{image_id}.png", False), voc_png(classes))
    archive.writestr(zip_entry(f"SegmentationObject/{image_id}.png", False), voc_png(objects))
    return True


def _spooled_rows(spooled: TextIO) -> Iterator[tuple[str, bool, set[str]]]:
    spooled.seek(0)
    for line in spooled:
        image_id, segmented, tags = line.rstrip("\n").split("\t")
        yield image_id, segmented == "1", set(tags.split(",")) if tags else set()


def _write_lines(archive: zipfile.ZipFile, name: str, lines: Iterable[str]) -> None:
    with archive.open(zip_entry(name, True), "w", force_zip64=True) as member:
        for line in lines:
            member.write(f"{line}\n".encode())


def _write_lists(archive: zipfile.ZipFile, lists: dict[str, TextIO], class_files: list[str]) -> None:
    """ImageSets from the spooled rows: VOC's own sets always (empty or not), Loupe's extra ones
    when they hold images; Segmentation lists when any image has masks; class lists per set."""
    for voc_set in (*SETS.values(), "trainval"):
        members = [lists[s] for s in (TRAINVAL if voc_set == "trainval" else (voc_set,)) if s in lists]
        if not members and voc_set in EXTRA_SETS:
            continue

        def rows():
            return (row for spooled in members for row in _spooled_rows(spooled))

        _write_lines(archive, f"ImageSets/Main/{voc_set}.txt", (image_id for image_id, _, _ in rows()))
        if any(segmented for _, segmented, _ in rows()):
            _write_lines(archive, f"ImageSets/Segmentation/{voc_set}.txt", (image_id for image_id, segmented, _ in rows() if segmented))
        if voc_set == "trainval":
            continue  # its class lists would repeat train's and val's, and count() would count each tag twice
        for index, class_file in enumerate(class_files):
            mine = str(index)
            _write_lines(archive, f"ImageSets/Main/{class_file}_{voc_set}.txt",
                         (f"{image_id} {1 if mine in tags else -1:2d}" for image_id, _, tags in rows()))


def _labelmap(source: ExportSource) -> str:
    colors = voc_colormap(len(source.labels) + 1)
    lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
    lines += [f"{label.name}:{','.join(map(str, colors[i]))}::" for i, label in enumerate(source.labels, start=1)]
    return "\n".join(lines) + "\n"


def count(path: Path, options: ExportOptions) -> Tally:
    """Images and objects from every Annotations/ XML whose image is in JPEGImages/, splits from the
    ImageSets/Main lists, classes from the per-class lists. With segmented 1, an image's objects
    count only when its two masks are there."""
    tally = Tally()
    with zipfile.ZipFile(path) as archive:
        entries = set(archive.namelist())
        split_of = {}
        for voc_set, split in SPLIT_OF_SET.items():
            for image_id in _lines(archive, f"ImageSets/Main/{voc_set}.txt", entries):
                split_of[image_id] = split
        for entry in sorted(entries):
            if not (entry.startswith("Annotations/") and entry.endswith(".xml")):
                continue
            image_id = entry[len("Annotations/"):-len(".xml")]
            root = ElementTree.fromstring(archive.read(entry))
            objects = root.findall("object")
            if f"JPEGImages/{root.findtext('filename')}" not in entries:
                if objects:
                    tally.skip("objects of an image missing from JPEGImages", len(objects))
                continue
            split = split_of.get(image_id, "(in no ImageSets list)")
            tally.add_image(split)
            masks = {f"SegmentationClass/{image_id}.png", f"SegmentationObject/{image_id}.png"}
            if root.findtext("segmented") == "1" and not masks <= entries:
                tally.skip("objects of an image whose masks are missing", len(objects))
                continue
            for element in objects:
                tally.add_annotation(element.findtext("name"), split)
        for entry in sorted(entries):
            match = re.fullmatch(r"ImageSets/Main/(.+)_([^_/]+)\.txt", entry)
            if not match or match.group(2) not in SPLIT_OF_SET:
                continue
            label_name, split = unquote(match.group(1)), SPLIT_OF_SET[match.group(2)]
            for line in _lines(archive, entry, entries):
                if line.rsplit(None, 1)[-1] == "1":
                    tally.add_annotation(label_name, split)
    return tally


def _lines(archive: zipfile.ZipFile, name: str, entries: set[str]):
    if name not in entries:
        return
    with archive.open(name) as raw:
        for line in raw:
            text = line.decode("utf-8").rstrip("\n")
            if text:
                yield text
