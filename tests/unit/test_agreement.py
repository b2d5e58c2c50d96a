"""Agreement between labelers' versions (services/agreement.py): IoU matching for shapes, exact match for classes."""

import pytest

from services.agreement import image_score, matches, merged, pair_score, shape_iou


def box(label, x, y, w, h):
    return {"label_id": label, "shape": "box", "geometry": {"x": x, "y": y, "width": w, "height": h}}


def polygon(label, points):
    return {"label_id": label, "shape": "polygon", "geometry": {"points": points}}


def tag(label):
    return {"label_id": label, "shape": "tag", "geometry": {}}


def test_box_iou_is_exact():
    assert shape_iou(box(1, 0, 0, 10, 10), box(1, 5, 0, 10, 10)) == pytest.approx(1 / 3)
    assert shape_iou(box(1, 0, 0, 10, 10), box(1, 20, 20, 5, 5)) == 0


def test_area_shapes_compare_their_areas_within_a_raster_cell():
    square = polygon(1, [[0, 0], [10, 0], [10, 10], [0, 10]])
    half = polygon(1, [[0, 0], [10, 0], [0, 10]])
    assert shape_iou(square, box(1, 0, 0, 10, 10)) == pytest.approx(1, abs=0.02)
    assert shape_iou(half, box(1, 0, 0, 10, 10)) == pytest.approx(0.5, abs=0.02)
    circle = {"label_id": 1, "shape": "circle", "geometry": {"cx": 50, "cy": 50, "r": 10}}
    assert shape_iou(circle, box(1, 40, 40, 20, 20)) == pytest.approx(3.14159 / 4, abs=0.02)


def test_matching_pairs_same_labels_once_best_first():
    a = [box(1, 0, 0, 10, 10), box(1, 100, 100, 10, 10)]
    b = [box(1, 1, 0, 10, 10), box(2, 100, 100, 10, 10), box(1, 0, 3, 10, 10)]
    assert [(i, j) for i, j, _ in matches(a, b)] == [(0, 0)]


@pytest.mark.parametrize("a, b, score", [
    ([], [], 1.0),
    ([tag(1)], [tag(1)], 1.0),
    ([tag(1)], [tag(2)], 0.0),
    ([tag(1), tag(2)], [tag(1)], 0.0),  # classes agree exactly or not at all
    ([box(1, 0, 0, 10, 10)], [box(1, 1, 1, 10, 10)], 1.0),
    ([box(1, 0, 0, 10, 10)], [box(1, 6, 0, 10, 10)], 0.0),  # IoU 0.25 < 0.5
    ([box(1, 0, 0, 10, 10), box(1, 50, 50, 10, 10)], [box(1, 0, 0, 10, 10)], 0.5),
    ([tag(3), box(1, 0, 0, 10, 10)], [tag(3), box(1, 0, 0, 10, 10), box(1, 80, 80, 5, 5)], 2 / 3),
])
def test_pair_scores(a, b, score):
    assert pair_score(a, b) == pytest.approx(score)
    assert pair_score(b, a) == pytest.approx(score)


def test_an_image_scores_the_mean_of_its_pairs():
    assert image_score([[box(1, 0, 0, 10, 10)]]) is None
    assert image_score([[box(1, 0, 0, 10, 10)], [box(1, 0, 0, 10, 10)], []]) == pytest.approx(1 / 3)


def test_merging_keeps_each_object_once_and_the_classes_all_name():
    first = [tag(1), tag(2), box(1, 0, 0, 10, 10)]
    second = [tag(1), box(1, 1, 1, 10, 10), box(1, 50, 50, 5, 5)]
    result = merged([first, second])
    assert [a["shape"] for a in result] == ["tag", "box", "box"]
    assert result[0]["label_id"] == 1 and result[1]["geometry"]["x"] == 0 and result[2]["geometry"]["x"] == 50
