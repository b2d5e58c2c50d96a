"""Shapes in one place: each shape's geometry keys, its bounding box, area, outline, and the
pixel <-> percent conversion, and what makes a geometry valid. Annotation validation, every format
and the thumbnail overlays use these.

Geometry is in pixel coordinates of the original image (after EXIF orientation):
    tag                 {}
    box                 {"x", "y", "width", "height"}   (x, y: the top-left corner)
    circle              {"cx", "cy", "r"}
    polygon, polyline,
    points              {"points": [[x, y], ...]}
"""

from __future__ import annotations

import math

from core.errors import is_finite_number

SHAPES = ("tag", "box", "polygon", "polyline", "points", "circle")
GEOMETRY_KEYS = {"tag": (), "box": ("x", "y", "width", "height"), "circle": ("cx", "cy", "r")}
POINT_SHAPES = ("polygon", "polyline", "points")
POINT_MINIMUM = {"polygon": 3, "polyline": 2, "points": 1}
# The shapes that enclose an area (outline() gives their polygon): what a mask shows.
AREA_SHAPES = ("box", "polygon", "circle")
# A circle becomes a polygon of this many vertices where a format or a mask has no circles.
CIRCLE_VERTICES = 64
MAX_POINTS = 10000
TOLERANCE = 0.5  # pixels a shape may poke out of the image (rounding in clients)
# One broken shape should not drown the problems of the other annotations saved with it.
MAX_POINT_PROBLEMS = 5


def geometry_problems(shape: str, geometry, width: int, height: int) -> list[tuple[str, str]]:
    """What is wrong with `geometry` for a `shape` (one of SHAPES) on a width x height image, as
    (field, message) pairs, the field a path from the annotation ("geometry.points[2].x"); [] if valid."""
    if not isinstance(geometry, dict):
        return [("geometry", "must be an object")]
    if shape in POINT_SHAPES:
        return _points_problems(shape, geometry, width, height)
    keys = GEOMETRY_KEYS[shape]
    problems = []
    extra = set(geometry) - set(keys)
    if extra:
        problems.append(("geometry", f"unknown keys {', '.join(sorted(map(str, extra)))}; a {shape} has " + (", ".join(keys) or "none")))
    problems += [(f"geometry.{key}", "is required") for key in keys if key not in geometry]
    problems += [
        (f"geometry.{key}", f"must be a finite number, not {geometry[key]!r}"[:200])
        for key in keys if key in geometry and not is_finite_number(geometry[key])
    ]
    if problems:
        return problems
    if shape == "box":
        x, y, w, h = (geometry[k] for k in keys)
        if w <= 0:
            problems.append(("geometry.width", "must be greater than 0"))
        if h <= 0:
            problems.append(("geometry.height", "must be greater than 0"))
        if w > 0 and h > 0:
            problems += _point_problems("geometry", x, y, width, height) + _point_problems("geometry", x + w, y + h, width, height)
    elif shape == "circle":
        if geometry["r"] <= 0:
            problems.append(("geometry.r", "must be greater than 0"))
        elif geometry["r"] > max(width, height):
            problems.append(("geometry.r", f"is larger than the image ({max(width, height)} px)"))
        problems += _point_problems("geometry", geometry["cx"], geometry["cy"], width, height)
    return problems


def _points_problems(shape: str, geometry: dict, width: int, height: int) -> list[tuple[str, str]]:
    problems = []
    extra = set(geometry) - {"points"}
    if extra:
        problems.append(("geometry", f"unknown keys {', '.join(sorted(map(str, extra)))}; a {shape} has only points"))
    points = geometry.get("points")
    if not isinstance(points, list):
        return problems + [("geometry.points", "must be a list of [x, y] pairs")]
    minimum = POINT_MINIMUM[shape]
    if not minimum <= len(points) <= MAX_POINTS:
        return problems + [("geometry.points", f"a {shape} needs {minimum} to {MAX_POINTS} points, got {len(points)}")]
    found = []
    for j, point in enumerate(points):
        field = f"geometry.points[{j}]"
        if not (isinstance(point, list) and len(point) == 2):
            found.append((field, "must be a pair [x, y]"))
        else:
            found += _point_problems(field, point[0], point[1], width, height)
        if len(found) >= MAX_POINT_PROBLEMS:
            break
    return problems + found


def _point_problems(field: str, x, y, width: int, height: int) -> list[tuple[str, str]]:
    problems = [
        (f"{field}.{name}", f"must be a finite number, not {value!r}"[:200])
        for name, value in (("x", x), ("y", y)) if not is_finite_number(value)
    ]
    if not problems and not (-TOLERANCE <= x <= width + TOLERANCE and -TOLERANCE <= y <= height + TOLERANCE):
        problems.append((field, f"point ({x}, {y}) is outside the {width}x{height} image"))
    return problems


def bbox(shape: str, geometry: dict) -> tuple[float, float, float, float] | None:
    """(x, y, width, height) of the shape's bounding box in pixels; None for a whole-image tag."""
    if shape == "box":
        return geometry["x"], geometry["y"], geometry["width"], geometry["height"]
    if shape == "circle":
        r = geometry["r"]
        return geometry["cx"] - r, geometry["cy"] - r, 2 * r, 2 * r
    if shape in POINT_SHAPES:
        xs = [p[0] for p in geometry["points"]]
        ys = [p[1] for p in geometry["points"]]
        return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    return None


def area(shape: str, geometry: dict) -> float:
    """The shape's area in square pixels (0 for lines, points and tags)."""
    if shape == "box":
        return geometry["width"] * geometry["height"]
    if shape == "circle":
        return math.pi * geometry["r"] ** 2
    if shape == "polygon":
        points = geometry["points"]
        twice = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]))
        return abs(twice) / 2
    return 0.0


def outline(shape: str, geometry: dict) -> list[tuple[float, float]] | None:
    """The shape as a closed polygon's vertices (box corners, a circle's CIRCLE_VERTICES), for
    masks and polygon formats; None for shapes that enclose nothing (tag, polyline, points)."""
    if shape == "box":
        x, y, w, h = bbox(shape, geometry)
        return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    if shape == "circle":
        cx, cy, r = geometry["cx"], geometry["cy"], geometry["r"]
        return [(cx + r * math.cos(2 * math.pi * i / CIRCLE_VERTICES), cy + r * math.sin(2 * math.pi * i / CIRCLE_VERTICES)) for i in range(CIRCLE_VERTICES)]
    if shape == "polygon":
        return [(p[0], p[1]) for p in geometry["points"]]
    return None


def svg_points(points: list | None) -> str:
    """A points geometry as an SVG `points` attribute ("x,y x,y ...")."""
    return " ".join(f"{p[0]},{p[1]}" for p in points or [])


def _scale(shape: str, geometry: dict, sx: float, sy: float) -> dict:
    if shape == "box":
        return {"x": geometry["x"] * sx, "y": geometry["y"] * sy, "width": geometry["width"] * sx, "height": geometry["height"] * sy}
    if shape == "circle":
        # A circle's radius has no single percent on a non-square image: it is kept relative to the width.
        return {"cx": geometry["cx"] * sx, "cy": geometry["cy"] * sy, "r": geometry["r"] * sx}
    if shape in POINT_SHAPES:
        return {"points": [[p[0] * sx, p[1] * sy] for p in geometry["points"]]}
    return {}


def to_percent(shape: str, geometry: dict, width: int, height: int) -> dict:
    """Pixel geometry as percent (0-100) of the image's width and height."""
    return _scale(shape, geometry, 100 / width, 100 / height)


def from_percent(shape: str, geometry: dict, width: int, height: int) -> dict:
    """Percent geometry (0-100) back to pixels."""
    return _scale(shape, geometry, width / 100, height / 100)


def from_fraction(shape: str, geometry: dict, width: int, height: int) -> dict:
    """Geometry in fractions (0-1) of the width and height, as YOLO and Label Studio give it, in pixels."""
    return _scale(shape, geometry, width, height)


def convert(shape: str, geometry: dict, width: int, height: int, coordinates: str) -> dict:
    """Geometry in the export's coordinates: "pixel" (as stored) or "percent"."""
    return to_percent(shape, geometry, width, height) if coordinates == "percent" else geometry


# What the image's full width (or height) measures in each coordinate system a format writes:
# percent for the "coordinates" option, normalized (0-1) for YOLO.
SPANS = {"percent": 100.0, "normalized": 1.0}


def _factors(width: int, height: int, coordinates: str) -> tuple[float, float] | None:
    """The scale from pixels to `coordinates`; None for pixels themselves (values kept as stored)."""
    span = SPANS.get(coordinates)
    return None if span is None else (span / width, span / height)


def bbox_in(shape: str, geometry: dict, width: int, height: int, coordinates: str) -> tuple[float, float, float, float] | None:
    """bbox() in "pixel", "percent" or "normalized" coordinates. Measured in pixels, then scaled:
    convert() keeps a circle's radius relative to the width alone, so on a non-square image the box of
    a converted circle is not the converted box of the circle."""
    box, factors = bbox(shape, geometry), _factors(width, height, coordinates)
    if box is None or factors is None:
        return box
    sx, sy = factors
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


def outline_in(shape: str, geometry: dict, width: int, height: int, coordinates: str) -> list[tuple[float, float]] | None:
    """outline() in "pixel", "percent" or "normalized" coordinates (measured in pixels, then scaled)."""
    vertices, factors = outline(shape, geometry), _factors(width, height, coordinates)
    if vertices is None or factors is None:
        return vertices
    sx, sy = factors
    return [(x * sx, y * sy) for x, y in vertices]


def area_in(shape: str, geometry: dict, width: int, height: int, coordinates: str) -> float:
    """area() in the squared units of "pixel", "percent" or "normalized" coordinates."""
    factors = _factors(width, height, coordinates)
    return area(shape, geometry) if factors is None else area(shape, geometry) * factors[0] * factors[1]


def flatten(vertices) -> list[float]:
    """[(x, y), ...] as [x1, y1, x2, y2, ...]: a COCO segmentation polygon, a YOLO polygon row."""
    return [c for vertex in vertices for c in vertex]


def ellipse_outline(cx: float, cy: float, rx: float, ry: float, degrees: float = 0.0) -> list[list[float]]:
    """CIRCLE_VERTICES points on an ellipse rotated clockwise (y down) about its centre."""
    turn = math.radians(degrees)
    cos_t, sin_t = math.cos(turn), math.sin(turn)
    points = []
    for i in range(CIRCLE_VERTICES):
        a = 2 * math.pi * i / CIRCLE_VERTICES
        x, y = rx * math.cos(a), ry * math.sin(a)
        points.append([cx + x * cos_t - y * sin_t, cy + x * sin_t + y * cos_t])
    return points
