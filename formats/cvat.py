"""CVAT for images 1.1 (XML): import only.

What is read: every *.xml under the upload (CVAT's annotations.xml from a task, job or project
export, alone or in its ZIP with images/; or Datumaro's <subset>.xml), each an <annotations>
document:

    <meta>                  the labels (of <project>, <task> or <job>), each with its attribute
                            definitions, and a project's <subsets>
    <image name width height [subset]>
                            one ImportImage; width and height as declared, in pixels
      <box xtl ytl xbr ybr [rotation]>          box; rotated (degrees clockwise about its centre):
                                                the polygon of its 4 corners
      <polygon points="x,y;x,y">                polygon
      <polyline points=...>                     polyline
      <points points=...>                       points
      <ellipse cx cy rx ry [rotation]>          circle when rx == ry, else a polygon of
                                                CIRCLE_VERTICES vertices on the ellipse
      <tag>                                     tag
        <attribute name=..>value</attribute>    attributes, typed by the label's definition
    <track>                 CVAT for video's: not imported, counted in Parsed.problems

Subsets. An image's subset is its `subset` attribute, else the file's stem when there are several
XML files (Datumaro writes one per subset) or the stem names a split ("train.xml"). A project export
repeats the same names and ids in each subset, so when the upload is laid out by subset (the project
lists <subsets>, images carry `subset`, or there are several files) an image's path is
"<Subset>/<name>", else its name as CVAT gives it. The split is split_named(subset): a subset that
names no split ("batch1") still makes the folder, with no split. The image file, when the upload
holds it, is images/<Subset>/<name>, images/<name> or <name> beside the XML.

Labels: those of <meta> in order, then any a shape names that <meta> does not define. Attribute
definitions become Loupe's: checkbox -> checkbox (default true/false), radio and select -> select
with CVAT's values, number -> number (CVAT's min/max/step values dropped: Loupe's numbers have
none), text -> text. A label with occluded shapes gets a checkbox "occluded" (occluded="1" ->
attributes["occluded"] = True), and an attribute a shape carries that its label does not define
becomes a text attribute of that label, so every imported value has a definition. z_order (Loupe
has no drawing order) and source (manual/auto, with no score) are ignored.

What one shape gets wrong (no label, a number that is not one, an attribute value its definition
does not allow, a mask, skeleton or cuboid, which Loupe has no shape for) goes into its image's
problems, naming the shape, and that shape alone is left out of the image's annotations.

The XML is read with expat in chunks, twice: once for the labels and subsets (and to refuse it
whole when malformed), then again to yield the images one at a time, so memory holds one <image>,
not the file. A DOCTYPE is refused outright: entity expansion and external entities live in it,
and CVAT never writes one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from xml.etree import ElementTree

from formats.base import ImportAnnotation, ImportImage, ImportLabel, NotThisFormat, Parsed, data_files, relative, split_named
from formats.safe_xml import xml_children
from services.shapes import ellipse_outline

KEY = "cvat"
IMPORT_TITLE = "CVAT for images 1.1 (annotations.xml, or the export's ZIP with images)"

POINT_SHAPES = {"polygon": "polygon", "polyline": "polyline", "points": "points"}
UNSUPPORTED = ("mask", "skeleton", "cuboid")  # CVAT shapes Loupe cannot hold
OCCLUDED = {"name": "occluded", "type": "checkbox", "default": False}
COLOR = re.compile(r"#[0-9a-fA-F]{6}")


# ---- geometry -----------------------------------------------------------------------------------


class ShapeError(ValueError):
    """What is wrong with one shape (it is left out, the message goes into its image's problems)."""


def _number(element: ElementTree.Element, key: str, default: float | None = None) -> float:
    raw = element.get(key)
    if raw is None and default is not None:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ShapeError(f"{key} is {raw!r}, not a number") from None
    if not math.isfinite(value):
        raise ShapeError(f"{key} is {raw!r}, not a finite number")
    return value


def _points(element: ElementTree.Element) -> list[list[float]]:
    raw = element.get("points") or ""
    points = []
    for pair in filter(None, (p.strip() for p in raw.split(";"))):
        try:
            x, y = (float(v) for v in pair.split(","))
        except ValueError:
            raise ShapeError(f"points has {pair!r}, not x,y") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ShapeError(f"points has {pair!r}, not finite numbers")
        points.append([x, y])
    if not points:
        raise ShapeError("points is empty")
    return points


def _geometry(element: ElementTree.Element) -> tuple[str, dict]:
    tag = element.tag
    if tag in POINT_SHAPES:
        return POINT_SHAPES[tag], {"points": _points(element)}
    if tag == "box":
        xtl, ytl, xbr, ybr = (_number(element, k) for k in ("xtl", "ytl", "xbr", "ybr"))
        rotation = _number(element, "rotation", 0.0) % 360
        if not rotation:
            return "box", {"x": xtl, "y": ytl, "width": xbr - xtl, "height": ybr - ytl}
        cx, cy, turn = (xtl + xbr) / 2, (ytl + ybr) / 2, math.radians(rotation)
        cos_t, sin_t = math.cos(turn), math.sin(turn)
        corners = [(xtl, ytl), (xbr, ytl), (xbr, ybr), (xtl, ybr)]
        return "polygon", {"points": [[cx + (x - cx) * cos_t - (y - cy) * sin_t, cy + (x - cx) * sin_t + (y - cy) * cos_t] for x, y in corners]}
    if tag == "ellipse":
        cx, cy, rx, ry = (_number(element, k) for k in ("cx", "cy", "rx", "ry"))
        if rx == ry:
            return "circle", {"cx": cx, "cy": cy, "r": rx}
        return "polygon", {"points": ellipse_outline(cx, cy, rx, ry, _number(element, "rotation", 0.0))}
    if tag == "tag":
        return "tag", {}
    raise ShapeError(f"Loupe has no {tag} shape")


# ---- labels and attribute definitions -----------------------------------------------------------


def _values(text: str | None) -> list[str]:
    # CVAT separates values with newlines; some exports (Datumaro's fixtures) with spaces.
    text = (text or "").strip()
    separated = text.split("\n") if "\n" in text else text.split()
    return [v.strip() for v in separated if v.strip()]


def _whole(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def _definition(element: ElementTree.Element) -> dict:
    """A CVAT <attribute> definition in Loupe's shape (services/labels.py)."""
    name = (element.findtext("name") or "").strip()
    kind = (element.findtext("input_type") or "text").strip().lower()
    default = (element.findtext("default_value") or "").strip()
    values = _values(element.findtext("values"))
    if kind == "checkbox":
        return {"name": name, "type": "checkbox", "default": default.lower() == "true"}
    if kind in ("radio", "select") and values:
        return {"name": name, "type": "select", "values": values, **({"default": default} if default in values else {})}
    if kind == "number":
        try:
            number = float(default)
        except ValueError:
            number = math.nan
        return {"name": name, "type": "number", **({"default": _whole(number)} if math.isfinite(number) else {})}
    return {"name": name, "type": "text", **({"default": default} if default else {})}


def typed(definition: dict | None, text: str):
    """An attribute's text as its definition's type; ValueError when the definition does not allow it."""
    kind = (definition or {}).get("type", "text")
    if kind == "checkbox":
        if text.strip().lower() not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return text.strip().lower() == "true"
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"{text!r} is not a finite number")
        return _whole(number)
    if kind == "select" and text not in definition["values"]:
        raise ValueError(f"{text!r} is not one of {', '.join(definition['values'])}")
    return text


@dataclass
class _Label:
    name: str
    color: str | None = None
    definitions: dict[str, dict] = field(default_factory=dict)  # attribute name -> definition


@dataclass
class _Document:
    path: Path
    name: str  # as the user knows it, relative to the upload
    stem_subset: str | None = None


class _Scan:
    """What the first pass learns from every file: labels, whether the upload is laid out by subset,
    and problems that belong to no image."""

    def __init__(self):
        self.labels: dict[str, _Label] = {}  # by casefolded name, in file order
        self.by_subset = False
        self.problems: list[tuple[str, str]] = []

    def label(self, name: str) -> _Label:
        return self.labels.setdefault(name.casefold(), _Label(name))

    def read_meta(self, meta: ElementTree.Element) -> None:
        for owner in meta:  # <project>, <task> or <job>
            self.by_subset = self.by_subset or bool((owner.findtext("subsets") or "").strip())
            for element in owner.findall("labels/label"):
                name = (element.findtext("name") or "").strip()
                if not name:
                    continue
                label = self.label(name)
                color = (element.findtext("color") or "").strip()
                label.color = label.color or (color.lower() if COLOR.fullmatch(color) else None)
                for attribute in element.findall("attributes/attribute"):
                    definition = _definition(attribute)
                    if definition["name"]:
                        label.definitions.setdefault(definition["name"], definition)

    def read_image(self, image: ElementTree.Element, document: _Document) -> None:
        if _clean_name(image.get("name") or "") is None:
            self.problems.append((f"{document.name}, <image id={image.get('id', '?')!r}>",
                                  f"name {image.get('name')!r} is not a relative file path; the image is left out"))
        if image.get("subset"):
            self.by_subset = True
        for shape in image:
            name = (shape.get("label") or "").strip()
            if not name:
                continue
            label = self.label(name)
            if shape.get("occluded") == "1":
                label.definitions.setdefault("occluded", dict(OCCLUDED))
            for attribute in shape.findall("attribute"):
                key = (attribute.get("name") or "").strip()
                if key:
                    label.definitions.setdefault(key, {"name": key, "type": "text"})

    def import_labels(self) -> list[ImportLabel]:
        return [ImportLabel(label.name, tuple(label.definitions.values()), label.color) for label in self.labels.values()]


def _documents(root: Path) -> list[_Document]:
    found = data_files(root, ".xml")
    if not found:
        raise NotThisFormat("No XML file found: CVAT for images 1.1 is an annotations.xml (alone or in its export's ZIP)")
    several = len(found) > 1
    documents = []
    for path in found:
        stem = path.stem
        subset = stem if (several and stem.casefold() != "annotations") or split_named(stem) else None
        documents.append(_Document(path, relative(root, path), subset))
    return documents


def _scan(documents: list[_Document]) -> _Scan:
    scan = _Scan()
    scan.by_subset = len(documents) > 1
    for document in documents:
        children = xml_children(document.path, document.name)
        top = next(children)
        if top.tag != "annotations":
            raise NotThisFormat(f"{document.name}: the root element is <{top.tag}>, not CVAT's <annotations>")
        tracks = 0
        for child in children:
            if child.tag == "meta":
                scan.read_meta(child)
            elif child.tag == "image":
                scan.read_image(child, document)
            elif child.tag == "track":
                tracks += 1
        if tracks:
            scan.problems.append((document.name, f"{tracks} <track> elements (CVAT for video) are not imported; export as CVAT for images 1.1"))
    return scan


# ---- images -------------------------------------------------------------------------------------


def _clean_name(raw: str) -> str | None:
    """The image name as a relative "/"-path, or None when it is empty or climbs out (".." , absolute)."""
    name = raw.replace("\\", "/").strip()
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return None
    return "/".join(parts)


def _size(image: ElementTree.Element, key: str) -> int | None:
    raw = image.get(key, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def _file(base: Path, subset: str | None, name: str) -> Path | None:
    candidates = ([base / "images" / subset / name] if subset else []) + [base / "images" / name, base / name]
    return next((c for c in candidates if c.is_file()), None)


def _annotation(shape: ElementTree.Element, labels: dict[str, _Label]) -> ImportAnnotation:
    name = (shape.get("label") or "").strip()
    if not name:
        raise ShapeError("it has no label")
    kind, geometry = _geometry(shape)
    definitions = labels[name.casefold()].definitions
    attributes = {}
    for attribute in shape.findall("attribute"):
        key = (attribute.get("name") or "").strip()
        if not key:
            continue
        try:
            attributes[key] = typed(definitions.get(key), attribute.text or "")
        except ValueError as error:
            raise ShapeError(f"attribute {key!r}: {error}") from None
    if shape.get("occluded") == "1":
        attributes["occluded"] = True
    return ImportAnnotation(label=name, shape=kind, geometry=geometry, attributes=attributes)


def _image(element: ElementTree.Element, document: _Document, scan: _Scan) -> ImportImage | None:
    """The <image> as an ImportImage; None for one whose name the first pass reported unusable."""
    name = _clean_name(element.get("name") or "")
    if name is None:
        return None
    subset = (element.get("subset") or "").strip() or document.stem_subset
    image = ImportImage(
        path=f"{subset}/{name}" if subset and scan.by_subset else name,
        split=split_named(subset),
        width=_size(element, "width"), height=_size(element, "height"),
        file=_file(document.path.parent, subset, name),
    )
    for index, shape in enumerate(element):
        try:
            image.annotations.append(_annotation(shape, scan.labels))
        except ShapeError as error:
            image.problems.append(f"shape {index + 1} (<{shape.tag}> label {shape.get('label', '')!r}): {error}; that shape is left out")
    return image


def _images(documents: list[_Document], scan: _Scan) -> Iterator[ImportImage]:
    seen: set[str] = set()
    for document in documents:
        for element in xml_children(document.path, document.name):
            if element.tag != "image":
                continue
            image = _image(element, document, scan)
            if image is None:
                continue
            if image.path in seen:
                image.problems.append(f"another <image> of the upload has the path {image.path!r}; this one's annotations are not applied")
            seen.add(image.path)
            yield image


def parse(root: Path) -> Parsed:
    """The CVAT XML files under root as labels and a stream of images (module docstring)."""
    documents = _documents(root)
    scan = _scan(documents)
    return Parsed(labels=scan.import_labels(), images=_images(documents, scan), problems=scan.problems)
