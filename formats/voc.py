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

Import (parse) reads one .xml, a folder of LabelImg-style .xml files beside their images, or this
layout (possibly one folder down, VOCdevkit/VOC2007/): every XML with an <annotation> root is an
image named by <filename> (else by its JPEGImages file, found by the XML's id), sized by <size>,
with one box per <object>'s bndbox (x = xmin - 1, width = xmax - xmin + 1: the export's inverse).
An image in JPEGImages without an XML is imported with no annotations. Attributes are kept where
they differ from VOC's defaults, so our export (pose Unspecified, truncated 0, difficult 0) reads
back with none: truncated, difficult and occluded 1 as checkboxes, a pose as text, each <actions>
flag set to 1 as a checkbox; the labels declare the attributes their objects use. Labels come from
labelmap.txt (its order and colours, background left out), then the names the XMLs use. Splits
come from the ImageSets/Main lists (train, val, test and Loupe's unassigned and review; an id only
in trainval is train), else the Segmentation, Layout or Action lists. Left out, and said so where
they occur: <part> boxes (Loupe has no part of an object); not read at all: the per-class lists
(VOC's classification lists disagree with the XMLs in the wild, so whole-image tags do not come
back) and the SegmentationClass/Object masks (the XML's boxes are the annotations). An XML that
declares a DOCTYPE is refused unread (entity expansion), a malformed one is a problem of its file.
"""

from __future__ import annotations

import math
import posixpath
import re
import zipfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, TextIO
from urllib.parse import unquote
from xml.etree import ElementTree

from formats.base import (
    IMAGE_EXTENSIONS, ExportImage, ExportOptions, ExportSource, ImportAnnotation, ImportImage, ImportLabel, NotThisFormat, Parsed,
    Progress, Tally, UniqueNames, copy_original, data_files, image_files, labels_by_id, relative, zip_entry,
)
from formats.folders_zip import dataset_folders, number, safe_segment, spool
from formats.masks import draw, label_values, regions, voc_colormap, voc_png
from formats.safe_xml import read_xml
from services.shapes import AREA_SHAPES, bbox

KEY = "voc"
TITLE = "Pascal VOC"
IMPORT_TITLE = "Pascal VOC (an XML, or a ZIP with Annotations/, JPEGImages/ and ImageSets/)"
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


# ---- import ----------------------------------------------------------------------------------

VOC_FOLDERS = ("Annotations", "JPEGImages")
# Where split lists live, the first naming an id deciding: Main is VOC's detection lists.
SET_FOLDERS = ("Main", "Segmentation", "Layout", "Action")
FLAGS = ("truncated", "difficult", "occluded")
DEFAULT_POSE = "Unspecified"
TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no", "")
SHOWN_IDS = 5  # ids named in a problem about many of them


class _Labels:
    """Label names in order of appearance, with their labelmap colour and the attributes they use."""

    def __init__(self):
        self.colors: dict[str, str] = {}
        self.attributes: dict[str, dict[str, str]] = {}  # name -> attribute name -> type

    def add(self, name: str, color: str | None = None) -> None:
        self.attributes.setdefault(name, {})
        if color:
            self.colors.setdefault(name, color)

    def use(self, name: str, attributes: dict) -> None:
        used = self.attributes.setdefault(name, {})
        for key, value in attributes.items():
            used.setdefault(key, "checkbox" if isinstance(value, bool) else "text")

    def records(self) -> list[ImportLabel]:
        def definition(key, kind):
            return {"name": key, "type": kind, **({"default": False} if kind == "checkbox" else {})}

        return [ImportLabel(name, tuple(definition(k, t) for k, t in used.items()), self.colors.get(name))
                for name, used in self.attributes.items()]


def parse(root: Path) -> Parsed:
    """Images, boxes, attributes, labels and splits of a VOC upload (module docstring)."""
    labels, problems, images = _Labels(), [], []
    bases = _bases(root)
    for base in bases:
        _read_labelmap(root, base, labels, problems)
        images += _parse_layout(root, base, labels, problems)
    if not bases:
        images = _parse_loose(root, labels, problems)
    return Parsed(labels=labels.records(), images=images, problems=problems)


def _bases(root: Path) -> list[Path]:
    """The folders holding Annotations/ or JPEGImages/, outermost only (a dataset folder may share the name)."""
    found = sorted({path.parent for name in VOC_FOLDERS for path in root.rglob(name) if path.is_dir()}, key=lambda p: len(p.parts))
    bases = []
    for base in found:
        if not any(base.is_relative_to(outer) for outer in bases):
            bases.append(base)
    return bases


def _inside(root: Path, path: Path) -> Path | None:
    """The path if it is a file under root (a <filename> of "../x" must not reach out of the upload)."""
    try:
        return path if path.is_file() and path.resolve().is_relative_to(root.resolve()) else None
    except (OSError, ValueError):  # a name too long, or holding a NUL
        return None


def _without_extension(relative_path: str) -> str:
    return posixpath.splitext(relative_path)[0]


def _parse_layout(root: Path, base: Path, labels: _Labels, problems: list) -> list[ImportImage]:
    annotations_dir, images_dir = base / "Annotations", base / "JPEGImages"
    files = {}  # id -> image file in JPEGImages
    for path in image_files(images_dir) if images_dir.is_dir() else ():
        files.setdefault(_without_extension(relative(images_dir, path)), path)
    xmls = {}  # id -> its XML in Annotations
    for xml in data_files(annotations_dir, ".xml") if annotations_dir.is_dir() else ():
        xmls[_without_extension(relative(annotations_dir, xml))] = xml
    split_of = _splits(root, base, set(files) | set(xmls), problems)
    images, used = {}, set()
    for image_id, xml in xmls.items():
        image = _from_xml(root, xml, image_id, images_dir, files.get(image_id), labels, problems, escaped=True)
        if image is not None:
            image.split = split_of.get(image_id)
            images[image_id] = image
            used.add(image.file)
    for image_id, path in files.items():
        if image_id not in images and path not in used:
            images[image_id] = ImportImage(path=_clean(relative(images_dir, path), True), split=split_of.get(image_id), file=path)
    missing = sorted(set(split_of) - set(images))
    if missing:
        problems.append((relative(root, base / "ImageSets") if base != root else "ImageSets",
                         f"{len(missing)} listed ids have no XML and no image in JPEGImages: {', '.join(missing[:SHOWN_IDS])}"))
    return sorted(images.values(), key=lambda image: image.path)


def _parse_loose(root: Path, labels: _Labels, problems: list) -> list[ImportImage]:
    """XMLs without the VOC folders: one uploaded file, or LabelImg's XMLs beside their images."""
    images, refusals = [], []
    for xml in data_files(root, ".xml"):
        image = _from_xml(root, xml, xml.stem, xml.parent, None, labels, refusals, escaped=False)
        if image is not None:
            images.append(image)
    if not images:
        why = "; ".join(f"{where}: {reason}" for where, reason in refusals[:3])
        raise NotThisFormat("Not Pascal VOC: no Annotations/ or JPEGImages/ folder and no XML with an <annotation> root "
                            f"({why or 'no .xml file'})")
    problems += refusals
    return images


def _clean(path: str, escaped: bool) -> str:
    """A <filename> as an image path: "/"-separated, no "." or ".." (it names a place in the dataset,
    not outside it), unescaped where our export escaped unsafe characters (folders_zip.safe_segment)."""
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".", "..")]
    return "/".join(unquote(part) if escaped else part for part in parts)


def _from_xml(root: Path, xml: Path, image_id: str, images_dir: Path, by_id: Path | None, labels: _Labels,
              problems: list, escaped: bool) -> ImportImage | None:
    """The XML's image; None (and a problem) when the XML cannot be read and names no image file."""
    where = relative(root, xml)
    try:
        tree = read_xml(xml)
        if tree.tag != "annotation":
            raise ValueError(f"its root element is <{tree.tag}>, not VOC's <annotation>")
    except (ElementTree.ParseError, ValueError, OSError) as error:
        problems.append((where, f"not read: {error}"))
        if by_id is None:
            return None
        # The image is still imported, without annotations that its XML may have had.
        return ImportImage(path=_clean(relative(images_dir, by_id), escaped), file=by_id,
                           problems=[f"{where} could not be read, so its annotations are not known"])
    filename = (tree.findtext("filename") or "").strip()
    file = (_inside(root, images_dir / filename) if filename else None) or by_id
    if file is None and not filename and images_dir.is_dir():
        file = next((p for p in sorted(images_dir.iterdir()) if p.stem == xml.stem and p.suffix.lower() in IMAGE_EXTENSIONS), None)
    if _clean(filename, escaped):
        path = filename
    elif file is not None:
        path = relative(images_dir, file)
    else:
        problems.append((where, "no <filename> and no image file of the same name: the image it annotates is not known"))
        return None
    image = ImportImage(path=_clean(path, escaped), width=_size(tree, "width"), height=_size(tree, "height"),
                        units="pixel", file=file)
    for index, element in enumerate(tree.findall("object"), start=1):
        annotation = _object(element, image.problems, f"object {index}")
        if annotation is not None:
            image.annotations.append(annotation)
            labels.use(annotation.label, annotation.attributes)
        parts = len(element.findall("part"))
        if parts:
            name = annotation.label if annotation else "?"
            problems.append((where, f"object {index} ({name}): {parts} <part> left out, Loupe has no parts of an object"))
    return image


def _size(tree: ElementTree.Element, key: str) -> int | None:
    try:
        value = float(tree.findtext(f"size/{key}") or "")
    except ValueError:
        return None
    # Some tools write 0 for a size they did not know: the image's own is used.
    return int(value) if value.is_integer() and value > 0 else None


def _flag(text: str | None) -> bool | None:
    value = (text or "").strip().lower()
    return True if value in TRUE else False if value in FALSE else None


def _object(element: ElementTree.Element, problems: list[str], where: str) -> ImportAnnotation | None:
    name = (element.findtext("name") or "").strip()
    if not name:
        problems.append(f"{where}: no <name>, so no label")
        return None
    corners = []
    for key in ("xmin", "ymin", "xmax", "ymax"):
        text = element.findtext(f"bndbox/{key}")
        try:
            corners.append(float(text))
        except (TypeError, ValueError):
            problems.append(f"{where} ({name}): " + (f"bndbox {key} is {text!r}, not a number" if text is not None else f"no bndbox {key}"))
            return None
    if not all(map(math.isfinite, corners)):
        problems.append(f"{where} ({name}): bndbox {corners} is not finite")
        return None
    xmin, ymin, xmax, ymax = corners
    width, height = xmax - xmin + 1, ymax - ymin + 1
    if width <= 0 or height <= 0:
        problems.append(f"{where} ({name}): bndbox ends before it starts ({xmin}, {ymin} to {xmax}, {ymax})")
        return None
    attributes = {}
    for key in FLAGS:
        value = _flag(element.findtext(key))
        if value is None:
            problems.append(f"{where} ({name}): <{key}> is {element.findtext(key)!r}, not 0 or 1; left out")
        elif value:
            attributes[key] = True
    pose = (element.findtext("pose") or "").strip()
    if pose and pose != DEFAULT_POSE:
        attributes["pose"] = pose
    for action in element.find("actions") if element.find("actions") is not None else ():
        if _flag(action.text) and action.tag not in attributes:
            attributes[action.tag] = True
    return ImportAnnotation(label=name, shape="box", geometry={"x": xmin - 1, "y": ymin - 1, "width": width, "height": height},
                            attributes=attributes)


def _splits(root: Path, base: Path, known: set[str], problems: list) -> dict[str, str]:
    """Image id -> split from the ImageSets lists; an id only in trainval trains."""
    split_of: dict[str, str] = {}
    for folder in SET_FOLDERS:
        directory = base / "ImageSets" / folder
        found: dict[str, str] = {}
        for voc_set, split in (*SPLIT_OF_SET.items(), ("trainval", "train")):
            listed = directory / f"{voc_set}.txt"
            if not listed.is_file():
                continue
            try:
                lines = listed.read_text(encoding="utf-8-sig").splitlines()
            except (UnicodeDecodeError, OSError) as error:
                problems.append((relative(root, listed), f"not read: {error}"))
                continue
            for line in lines:
                # An id a line (our ids may hold spaces); Layout's and Action's lists add an object number.
                image_id = line.strip() if folder == "Main" or line.strip() in known else (line.split() or [""])[0]
                if not image_id:
                    continue
                if voc_set != "trainval" and found.get(image_id, split) != split:
                    problems.append((relative(root, listed), f"{image_id} is listed in {found[image_id]} too: kept there"))
                found.setdefault(image_id, split)
        for image_id, split in found.items():
            split_of.setdefault(image_id, split)
    return split_of


def _read_labelmap(root: Path, base: Path, labels: _Labels, problems: list) -> None:
    """CVAT's labelmap.txt ("name:r,g,b:parts:actions"), which our export writes: label order and colours."""
    path = base / "labelmap.txt"
    if not path.is_file():
        return
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (UnicodeDecodeError, OSError) as error:
        problems.append((relative(root, path), f"not read: {error}"))
        return
    background = True
    for line_number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.rsplit(":", 3)  # a name may hold ":"; the three fields after it cannot
        if len(fields) < 2:
            problems.append((f"{relative(root, path)}:{line_number}", f"not name:r,g,b: {line[:100]!r}"))
            continue
        name, rgb = fields[0].strip(), fields[1].strip()
        if background and name == "background":
            background = False  # VOC's class 0, not a label
            continue
        color = None
        try:
            channels = [int(c) for c in rgb.split(",")] if rgb else []
            if channels:
                if len(channels) != 3 or not all(0 <= c <= 255 for c in channels):
                    raise ValueError
                color = "#{:02x}{:02x}{:02x}".format(*channels)
        except ValueError:
            problems.append((f"{relative(root, path)}:{line_number}", f"the colour of {name!r} is not r,g,b: {rgb[:50]!r}"))
        if name:
            labels.add(name, color)
