"""Label Studio JSON export (a list of tasks): import only.

What is read: the one *.json under the upload, a list of tasks as Label Studio's "JSON" export
writes it, read whole with json (the export is one array); and, when a label_config*.xml lies
beside it (the project's labelling config: the one named for the JSON, data_obb.json ->
label_config_obb.xml, when there are several), its labels.

    task.data.<image>       one ImportImage per task; the key is the config's <Image value="$...">,
                            else "image". The path is the URL's base name, percent-decoded, without
                            its query ("/data/local-files/?d=dir/a.jpg": the base name of d). An
                            upload's name keeps Label Studio's 8-hex prefix ("/data/upload/1/
                            8f3a2b1c-cat.jpg" -> "8f3a2b1c-cat.jpg"): the prefix may be all that
                            tells two uploads of "cat.jpg" apart, and matching by file name falls
                            back on the full name. An image file of that name in the upload is
                            imported too.
    result original_width,  the image's declared size (the first result that has them)
           original_height
    rectanglelabels         box; a rotated one (rotation != 0, degrees clockwise about its
                            top-left corner, in pixels as Label Studio draws it) the polygon of
                            its 4 corners, computed in pixels and divided back
    polygonlabels           polygon
    keypointlabels          points (one point)
    ellipselabels           circle when radiusX and radiusY are the same length in pixels (r then a
                            fraction of the image's larger side), else a polygon of CIRCLE_VERTICES
                            vertices on the ellipse
    choices, labels         a tag per choice or label (labels with no region)
    rectangle, polygon, ... (the tools without labels) take their label from the "labels" result
                            of the same region id

Units: Label Studio's values are percent of the image; they are imported as fractions (/ 100), so
every image is in "fraction" units, whether or not its size is known. A rotated rectangle needs
the size (the rotation is in pixels); without it that shape is left out with a problem.

Which annotations: a task's annotations that were not cancelled; of several (two people labelled
it), the most recent by updated_at, then created_at, the last on a tie; the others are named in
Parsed.problems. A task with no annotation imports its most recent prediction instead, each
result a pre-label with its score (the result's "score", else the prediction's); a prediction with
no score is left out, since Loupe keeps a prediction only with its confidence.

Labels: the config's in order (colours from their background), then the names the results use
that the config lacks, compared without case since Loupe's label names are unique without case;
an annotation keeps its label's name as the file spells it.

What one region gets wrong (values not finite numbers, no label) goes into its image's problems
and that region alone is left out; result types Loupe has no shape for (relation, textarea,
brushlabels, ...) are counted in Parsed.problems. Input that is not a list of tasks with
data.image is NotThisFormat.
"""

from __future__ import annotations

import json
import math
import posixpath
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from PIL import ImageColor

from core.errors import is_finite_number
from formats.base import ImportAnnotation, ImportImage, ImportLabel, NotThisFormat, Parsed, data_files, image_files, relative
from formats.safe_xml import xml_children
from services.shapes import ellipse_outline

KEY = "label_studio"
IMPORT_TITLE = "Label Studio JSON export (the JSON, or a ZIP with it and its label_config.xml)"

# The result types with a region, and the key of their labels in `value` (the labelled tool's).
REGION_TYPES = {
    "rectanglelabels": "rectanglelabels", "rectangle": None,
    "polygonlabels": "polygonlabels", "polygon": None,
    "keypointlabels": "keypointlabels", "keypoint": None,
    "ellipselabels": "ellipselabels", "ellipse": None,
}
TAG_TYPES = {"choices": "choices", "labels": "labels"}
LABEL_TAGS = ("Label", "Choice")
UNSCORED = "prediction without a score"  # a reason a result is left out, beside the unknown types


class RegionError(ValueError):
    """What is wrong with one result (it is left out, the message goes into its image's problems)."""


# ---- the files ----------------------------------------------------------------------------------


def _export(root: Path) -> Path:
    found = data_files(root, ".json")
    if len(found) != 1:
        names = ", ".join(relative(root, p) for p in found[:5]) or "none"
        raise NotThisFormat(f"A Label Studio JSON export is one .json file; found {len(found)} ({names})")
    return found[0]


def _config(export: Path) -> Path | None:
    configs = sorted(export.parent.glob("label_config*.xml"))
    if len(configs) == 1:
        return configs[0]
    named = export.parent / f"label_config{export.stem.removeprefix('data')}.xml"
    return named if named in configs else None


def _color(value: str | None) -> str | None:
    try:
        red, green, blue = ImageColor.getrgb(value or "")[:3]
    except ValueError:
        return None
    return f"#{red:02x}{green:02x}{blue:02x}"


def _read_config(path: Path, name: str) -> tuple[list[ImportLabel], str | None]:
    """The config's labels in order, and the data key of its <Image> (None: none there)."""
    children = xml_children(path, name)
    view = next(children)
    for child in children:
        view.append(child)
    labels, seen = [], set()
    for element in view.iter():
        value = (element.get("value") or "").strip()
        if element.tag in LABEL_TAGS and value and value.casefold() not in seen:
            seen.add(value.casefold())
            labels.append(ImportLabel(value, color=_color(element.get("background"))))
    image = next((e.get("value", "") for e in view.iter("Image") if e.get("value", "").startswith("$")), None)
    return labels, image[1:] if image else None


# ---- one task -----------------------------------------------------------------------------------


def image_path(url: str) -> str | None:
    """The base name an image URL names (module docstring); None when it names none."""
    parts = urlsplit(url.strip())
    if parts.scheme == "data":
        return None
    name = posixpath.basename(unquote(parts.path))
    if not name:
        local = parse_qs(parts.query).get("d")
        name = posixpath.basename(local[0].replace("\\", "/")) if local else ""
    return name if name not in ("", ".", "..") else None


def _numbers(value: dict, *keys: str) -> list[float]:
    bad = [key for key in keys if not is_finite_number(value.get(key))]
    if bad:
        raise RegionError(", ".join(f"{key} is {value.get(key)!r}" for key in bad) + ", not finite numbers")
    return [float(value[key]) for key in keys]


def _geometry(kind: str, value: dict, size: tuple[int, int] | None) -> tuple[str, dict]:
    """The region in fractions of the image."""
    if kind.startswith("rectangle"):
        x, y, w, h = (v / 100 for v in _numbers(value, "x", "y", "width", "height"))
        rotation = _numbers(value, "rotation")[0] % 360 if "rotation" in value else 0.0
        if not rotation:
            return "box", {"x": x, "y": y, "width": w, "height": h}
        if size is None:
            raise RegionError("it is rotated and the image's original_width/original_height are not given")
        width, height = size
        turn = math.radians(rotation)
        cos_t, sin_t = math.cos(turn), math.sin(turn)
        px, py, pw, ph = x * width, y * height, w * width, h * height
        corners = [(0, 0), (pw, 0), (pw, ph), (0, ph)]
        return "polygon", {"points": [[(px + dx * cos_t - dy * sin_t) / width, (py + dx * sin_t + dy * cos_t) / height] for dx, dy in corners]}
    if kind.startswith("polygon"):
        points = value.get("points")
        if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 and all(map(is_finite_number, p)) for p in points):
            raise RegionError("points is not a list of [x, y] finite numbers")
        return "polygon", {"points": [[p[0] / 100, p[1] / 100] for p in points]}
    if kind.startswith("keypoint"):
        x, y = _numbers(value, "x", "y")
        return "points", {"points": [[x / 100, y / 100]]}
    x, y, rx, ry = (v / 100 for v in _numbers(value, "x", "y", "radiusX", "radiusY"))
    rotation = _numbers(value, "rotation")[0] if "rotation" in value else 0.0
    if size is None:
        raise RegionError("it is an ellipse and the image's original_width/original_height are not given")
    width, height = size
    if math.isclose(rx * width, ry * height):
        # A circle's r in fractions is of the image's width, as in services/shapes.py.
        return "circle", {"cx": x, "cy": y, "r": rx}
    outline = ellipse_outline(x * width, y * height, rx * width, ry * height, rotation)
    return "polygon", {"points": [[px / width, py / height] for px, py in outline]}


def _names(result: dict, key: str | None, region_labels: dict[str, list]) -> list[str]:
    value = result.get("value") or {}
    names = value.get(key) if key else region_labels.get(result.get("id"))
    if not isinstance(names, list) or not names:
        raise RegionError("it has no label")
    if not all(isinstance(n, str) and n.strip() for n in names):
        raise RegionError(f"its labels {names!r} are not all names")
    return [n.strip() for n in names]


def _size(results: list) -> tuple[int, int] | None:
    for result in results:
        if isinstance(result, dict):
            width, height = result.get("original_width"), result.get("original_height")
            if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
                return width, height
    return None


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _when(record: dict) -> tuple[str, str]:
    return str(record.get("updated_at") or ""), str(record.get("created_at") or "")


def _chosen(task: dict, where: str, problems: list[tuple[str, str]]) -> tuple[dict | None, bool]:
    """The annotation (or, with none, the prediction) whose results are imported, and whether it is a prediction."""
    annotations = [a for a in _list(task.get("annotations")) if isinstance(a, dict) and not a.get("was_cancelled")]
    predictions = [p for p in _list(task.get("predictions")) if isinstance(p, dict)]
    candidates, predicted = (annotations, False) if annotations else (predictions, True)
    if not candidates:
        return None, False
    # max() keeps the first of equals: reversed, the last of the file wins a tie.
    chosen = max(reversed(candidates), key=_when)
    kind = "predictions" if predicted else "annotations"
    if len(candidates) > 1:
        problems.append((where, f"{len(candidates)} {kind}: imported id {chosen.get('id')!r}, the most recent "
                                f"(updated {chosen.get('updated_at') or chosen.get('created_at') or 'at no given time'}); "
                                f"left out: {', '.join(repr(c.get('id')) for c in candidates if c is not chosen)}"))
    if annotations and predictions:
        problems.append((where, f"{len(predictions)} predictions left out: the task has an annotation"))
    return chosen, predicted


def _task(task: dict, key: str, where: str, problems: list[tuple[str, str]], skipped: Counter, files: dict) -> ImportImage | None:
    data = task.get("data")
    url = data.get(key) if isinstance(data, dict) else None
    path = image_path(url) if isinstance(url, str) else None
    if path is None:
        problems.append((where, f"data.{key} is {url!r}, not an image URL; the task is left out"))
        return None
    chosen, predicted = _chosen(task, where, problems)
    results = chosen.get("result") if chosen else []
    if not isinstance(results, list):
        results = []
        problems.append((where, "its result is not a list; the task imports no annotations"))
    size = _size(results)
    image = ImportImage(path=path, width=size and size[0], height=size and size[1], units="fraction", file=files.get(path))
    default_score = chosen.get("score") if chosen else None
    region_ids = {r.get("id") for r in results if isinstance(r, dict) and r.get("type") in REGION_TYPES}
    # A labels result that shares its id with a region labels that region, not the whole image.
    region_labels = {
        r.get("id"): (r.get("value") or {}).get("labels") for r in results
        if isinstance(r, dict) and r.get("type") == "labels" and r.get("id") in region_ids and isinstance(r.get("value"), dict)
    }
    for index, result in enumerate(results, start=1):
        kind = result.get("type") if isinstance(result, dict) else None
        if kind == "labels" and result.get("id") in region_labels:
            continue
        if kind not in REGION_TYPES and kind not in TAG_TYPES:
            skipped[str(kind)] += 1
            continue
        score = result.get("score", default_score)
        if predicted and not is_finite_number(score):
            skipped[UNSCORED] += 1
            continue
        try:
            value = result.get("value")
            if not isinstance(value, dict):
                raise RegionError("its value is not an object")
            if kind in TAG_TYPES:
                shape, geometry = "tag", {}
                names = _names(result, TAG_TYPES[kind], {})
            else:
                shape, geometry = _geometry(kind, value, size)
                names = _names(result, REGION_TYPES[kind], region_labels)
        except RegionError as error:
            image.problems.append(f"result {index} ({kind} {result.get('id')!r}): {error}; that result is left out")
            continue
        for name in names:
            image.annotations.append(ImportAnnotation(label=name, shape=shape, geometry=dict(geometry), score=float(score) if predicted else None))
    return image


# ---- the export -------------------------------------------------------------------------------


def parse(root: Path) -> Parsed:
    """The Label Studio export under root as labels and images (module docstring)."""
    export = _export(root)
    name = relative(root, export)
    try:
        with export.open(encoding="utf-8-sig") as stream:
            tasks = json.load(stream)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NotThisFormat(f"{name} is not JSON: {error}") from None
    if not isinstance(tasks, list):
        raise NotThisFormat(f"{name} holds a JSON {type(tasks).__name__}, not Label Studio's list of tasks")
    if tasks and not any(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks):
        raise NotThisFormat(f"{name} is a list, but not of Label Studio tasks (objects with data and annotations)")
    problems: list[tuple[str, str]] = []
    labels, key = [], None
    config = _config(export)
    if config is not None:
        try:
            labels, key = _read_config(config, relative(root, config))
        except NotThisFormat as error:
            problems.append((relative(root, config), f"{error}; the labels are taken from the results"))
    key = key or "image"
    files = {}
    for path in image_files(root):
        files[path.name] = None if path.name in files else path  # a name that repeats matches no file
    skipped: Counter = Counter()
    images, seen = [], set()
    for index, task in enumerate(tasks):
        where = f"{name}, task {task.get('id', index + 1)!r}" if isinstance(task, dict) else f"{name}, item {index + 1}"
        if not isinstance(task, dict):
            problems.append((where, "not a task object; left out"))
            continue
        image = _task(task, key, where, problems, skipped, files)
        if image is None:
            continue
        if image.path in seen:
            image.problems.append(f"another task of the export names the image {image.path!r}; this one's annotations are not applied")
        seen.add(image.path)
        images.append(image)
    for kind, n in sorted(skipped.items()):
        why = "without a score" if kind == UNSCORED else f"of type {kind!r} (Loupe has no shape for them)"
        problems.append((name, f"{n} results {why} left out"))
    known = {label.name.casefold() for label in labels}
    for image in images:
        for annotation in image.annotations:
            if annotation.label.casefold() not in known:
                known.add(annotation.label.casefold())
                labels.append(ImportLabel(annotation.label))
    return Parsed(labels=labels, images=images, problems=problems)
