"""services/shapes.py: every shape's bounding box, area, outline, percent round trip and validation."""

import math

import pytest

from services import shapes

W, H = 16, 12

GEOMETRY = {
    "tag": {},
    "box": {"x": 2, "y": 3, "width": 8, "height": 4},
    "circle": {"cx": 8, "cy": 6, "r": 3},
    "polygon": {"points": [[0, 0], [8, 0], [8, 6]]},
    "polyline": {"points": [[1, 2], [5, 10]]},
    "points": {"points": [[3.5, 4.25], [12, 1]]},
}
BBOX = {
    "tag": None, "box": (2, 3, 8, 4), "circle": (5, 3, 6, 6),
    "polygon": (0, 0, 8, 6), "polyline": (1, 2, 4, 8), "points": (3.5, 1, 8.5, 3.25),
}
AREA = {"tag": 0, "box": 32, "circle": math.pi * 9, "polygon": 24, "polyline": 0, "points": 0}


def test_the_examples_cover_every_shape():
    assert set(GEOMETRY) == set(shapes.SHAPES)


@pytest.mark.parametrize("shape", shapes.SHAPES)
def test_bbox_and_area(shape):
    assert shapes.bbox(shape, GEOMETRY[shape]) == BBOX[shape]
    assert shapes.area(shape, GEOMETRY[shape]) == pytest.approx(AREA[shape])


@pytest.mark.parametrize("shape", shapes.SHAPES)
def test_outline_encloses_the_same_area(shape):
    vertices = shapes.outline(shape, GEOMETRY[shape])
    if shape in ("tag", "polyline", "points"):
        assert vertices is None
        return
    polygon = {"points": [list(v) for v in vertices]}
    # A circle's outline is the inscribed 64-gon: a little less than the circle.
    assert shapes.area("polygon", polygon) == pytest.approx(AREA[shape], rel=0.01)
    assert shapes.bbox("polygon", polygon) == pytest.approx(BBOX[shape], abs=0.01)


@pytest.mark.parametrize("shape", shapes.SHAPES)
def test_percent_round_trip(shape):
    percent = shapes.to_percent(shape, GEOMETRY[shape], W, H)
    assert set(percent) == set(GEOMETRY[shape])
    back = shapes.from_percent(shape, percent, W, H)
    assert back.keys() == GEOMETRY[shape].keys()
    for key, value in GEOMETRY[shape].items():
        if key == "points":
            assert [pytest.approx(p, abs=1e-9) for p in value] == back[key]
        else:
            assert back[key] == pytest.approx(value, abs=1e-9)
    assert shapes.convert(shape, GEOMETRY[shape], W, H, "pixel") is GEOMETRY[shape]
    assert shapes.convert(shape, GEOMETRY[shape], W, H, "percent") == percent


def test_percent_is_of_width_and_height():
    assert shapes.to_percent("box", GEOMETRY["box"], W, H) == {"x": 12.5, "y": 25, "width": 50, "height": pytest.approx(100 / 3)}


@pytest.mark.parametrize("shape", shapes.SHAPES)
def test_every_example_is_valid(shape):
    assert shapes.geometry_problems(shape, GEOMETRY[shape], W, H) == []


@pytest.mark.parametrize("shape, geometry, problems", [
    ("box", [1, 2], [("geometry", "must be an object")]),
    ("box", {"x": 1, "y": 1, "width": 2}, [("geometry.height", "is required")]),
    ("box", {"x": 1, "y": 1, "width": 2, "height": 2, "angle": 3},
     [("geometry", "unknown keys angle; a box has x, y, width, height")]),
    ("box", {"x": float("nan"), "y": 1, "width": 2, "height": 2}, [("geometry.x", "must be a finite number, not nan")]),
    ("box", {"x": 1, "y": 1, "width": 0, "height": -1},
     [("geometry.width", "must be greater than 0"), ("geometry.height", "must be greater than 0")]),
    ("box", {"x": 10, "y": 1, "width": 7, "height": 2}, [("geometry", "point (17, 3) is outside the 16x12 image")]),
    ("box", {"x": -0.5, "y": -0.5, "width": W + 1, "height": H + 1}, []),
    ("tag", {"x": 1}, [("geometry", "unknown keys x; a tag has none")]),
    ("circle", {"cx": 5, "cy": 5, "r": 0}, [("geometry.r", "must be greater than 0")]),
    ("circle", {"cx": 5, "cy": 5, "r": 17}, [("geometry.r", "is larger than the image (16 px)")]),
    ("circle", {"cx": 20, "cy": 5, "r": 1}, [("geometry", "point (20, 5) is outside the 16x12 image")]),
    ("circle", {"cx": "5", "r": 1}, [("geometry.cy", "is required"), ("geometry.cx", "must be a finite number, not '5'")]),
    ("points", {}, [("geometry.points", "must be a list of [x, y] pairs")]),
    ("points", {"points": [[1, 1]], "closed": True}, [("geometry", "unknown keys closed; a points has only points")]),
    ("polygon", {"points": [[1, 1], [2, 2]]}, [("geometry.points", "a polygon needs 3 to 10000 points, got 2")]),
    ("polyline", {"points": [[1, 1]] * (shapes.MAX_POINTS + 1)},
     [("geometry.points", f"a polyline needs 2 to {shapes.MAX_POINTS} points, got {shapes.MAX_POINTS + 1}")]),
    ("polygon", {"points": [[0, 0], [1], [True, 2], [1, 2, 3], [17, 1]]}, [
        ("geometry.points[1]", "must be a pair [x, y]"), ("geometry.points[2].x", "must be a finite number, not True"),
        ("geometry.points[3]", "must be a pair [x, y]"), ("geometry.points[4]", "point (17, 1) is outside the 16x12 image"),
    ]),
])
def test_geometry_problems_name_the_field(shape, geometry, problems):
    assert shapes.geometry_problems(shape, geometry, W, H) == problems


def test_one_broken_shape_reports_a_few_of_its_points():
    broken = {"points": [[float("nan"), float("inf")]] * 100}
    problems = shapes.geometry_problems("polygon", broken, W, H)
    # Two problems a point: it stops after the point that makes five or more.
    assert [field for field, _ in problems] == [f"geometry.points[{j}].{axis}" for j in range(3) for axis in "xy"]
    assert problems[:2] == [("geometry.points[0].x", "must be a finite number, not nan"), ("geometry.points[0].y", "must be a finite number, not inf")]


def test_svg_points_for_the_tile_overlay():
    assert shapes.svg_points(GEOMETRY["points"]["points"]) == "3.5,4.25 12,1"
    assert shapes.svg_points(None) == ""
