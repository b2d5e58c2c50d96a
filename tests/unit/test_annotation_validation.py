"""Annotation validation (services/annotations.py): every bad value names the annotation index and field."""

import math

import pytest

from core.errors import Conflict, Invalid
from core.extensions import db
from models import Annotation, AnnotationRevision, Image, Label
from services import annotations as service
from services.shapes import MAX_POINTS
from tests.factories import make_dataset, make_user
from tests.support import insert_images

W, H = 64, 48  # insert_images' size


def setup(type_: str = "detection"):
    owner = make_user()
    dataset = make_dataset(owner, name=f"Set {type_}", type=type_)
    image = db.session.get(Image, insert_images(dataset, 1)[0])
    car = Label(dataset_id=dataset.id, name="car", attributes=[
        {"name": "color", "type": "select", "values": ["red", "blue"]},
        {"name": "doors", "type": "number"},
        {"name": "parked", "type": "checkbox"},
        {"name": "note", "type": "text"},
    ])
    plate = Label(dataset_id=dataset.id, name="plate", with_text=True, shortcut="p")
    db.session.add_all([car, plate])
    db.session.commit()
    return owner, dataset, image, car, plate


@pytest.fixture
def det(app_ctx):
    return setup("detection")


def box(label, **geometry):
    return {"label_id": label.id, "shape": "box", "geometry": {"x": 1, "y": 2, "width": 10, "height": 5, **geometry}}


def error_of(image, annotations) -> dict:
    with pytest.raises(Invalid) as info:
        service.validate_annotations(image, annotations)
    return info.value


def assert_error(image, annotations, index, field):
    exc = error_of(image, annotations)
    problems = exc.details["errors"]
    assert any(p["index"] == index and p["field"] == field for p in problems), problems
    if problems[0]["index"] is not None:
        assert f"Annotation {problems[0]['index']}" in exc.message and problems[0]["field"] in exc.message


def test_a_valid_set_of_every_detection_shape_passes(det):
    _, _, image, car, plate = det
    records = service.validate_annotations(image, [
        box(car, x=0, y=0, width=W, height=H),
        {"label_id": car.id, "shape": "polygon", "geometry": {"points": [[0, 0], [10, 0], [10, 10]]}},
        {"label_id": car.id, "shape": "polyline", "geometry": {"points": [[0, 0], [64.4, 48.4]]}},
        {"label_id": car.id, "shape": "points", "geometry": {"points": [[5.5, 6.25]]}},
        {"label_id": car.id, "shape": "circle", "geometry": {"cx": 32, "cy": 24, "r": 10}},
        {**box(plate), "text": "AB-123", "attributes": {}},
        {**box(car), "attributes": {"color": "red", "doors": 4, "parked": True, "note": "dented"}},
        {**box(car), "source": "prediction", "score": 0.75, "id": 99, "author_id": 5},
    ])
    assert len(records) == 8 and records[5]["text"] == "AB-123" and records[7]["source"] == "prediction"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -math.inf, True, "3", None, [1], {"v": 1}])
@pytest.mark.parametrize("field", ["x", "y", "width", "height"])
def test_box_numbers_must_be_finite(det, field, bad):
    _, _, image, car, _ = det
    assert_error(image, [box(car), box(car, **{field: bad})], 1, f"geometry.{field}")


@pytest.mark.parametrize("field, value", [("width", 0), ("width", -3), ("height", 0), ("height", -0.1)])
def test_box_needs_a_positive_size(det, field, value):
    _, _, image, car, _ = det
    assert_error(image, [box(car, **{field: value})], 0, f"geometry.{field}")


@pytest.mark.parametrize("geometry", [
    {"x": -1, "y": 0, "width": 5, "height": 5}, {"x": 0, "y": -1, "width": 5, "height": 5},
    {"x": 60, "y": 0, "width": 5, "height": 5}, {"x": 0, "y": 44, "width": 5, "height": 5},
    {"x": 1000, "y": 1000, "width": 1, "height": 1},
])
def test_box_must_be_inside_the_image(det, geometry):
    _, _, image, car, _ = det
    assert_error(image, [box(car, **geometry)], 0, "geometry")


def test_box_within_half_a_pixel_of_the_edge_is_fine(det):
    _, _, image, car, _ = det
    service.validate_annotations(image, [box(car, x=-0.5, y=-0.5, width=W + 1, height=H + 1)])


def test_box_with_missing_or_unknown_keys(det):
    _, _, image, car, _ = det
    assert_error(image, [{"label_id": car.id, "shape": "box", "geometry": {"x": 1, "y": 1, "width": 2}}], 0, "geometry.height")
    assert_error(image, [box(car, angle=3)], 0, "geometry")
    assert_error(image, [{"label_id": car.id, "shape": "box", "geometry": [1, 2, 3, 4]}], 0, "geometry")


@pytest.mark.parametrize("shape, count", [("polygon", 2), ("polyline", 1), ("points", 0)])
def test_point_shapes_need_enough_points(det, shape, count):
    _, _, image, car, _ = det
    points = [[1, 1], [2, 2], [3, 3]][:count]
    assert_error(image, [{"label_id": car.id, "shape": shape, "geometry": {"points": points}}], 0, "geometry.points")


def test_point_shapes_are_bounded(det):
    _, _, image, car, _ = det
    points = [[1, 1]] * (MAX_POINTS + 1)
    assert_error(image, [{"label_id": car.id, "shape": "polyline", "geometry": {"points": points}}], 0, "geometry.points")


@pytest.mark.parametrize("point, field", [
    ([1], "geometry.points[1]"), ("1,2", "geometry.points[1]"), ([1, 2, 3], "geometry.points[1]"),
    ([float("nan"), 1], "geometry.points[1].x"), ([1, float("inf")], "geometry.points[1].y"), ([False, 1], "geometry.points[1].x"),
    ([65, 1], "geometry.points[1]"), ([1, -2], "geometry.points[1]"),
])
def test_each_point_is_a_finite_pair_inside_the_image(det, point, field):
    _, _, image, car, _ = det
    polygon = {"label_id": car.id, "shape": "polygon", "geometry": {"points": [[0, 0], point, [5, 5]]}}
    assert_error(image, [box(car), polygon], 1, field)


def test_points_must_be_a_list(det):
    _, _, image, car, _ = det
    assert_error(image, [{"label_id": car.id, "shape": "points", "geometry": {"points": {"x": 1}}}], 0, "geometry.points")
    assert_error(image, [{"label_id": car.id, "shape": "points", "geometry": {}}], 0, "geometry.points")
    assert_error(image, [{"label_id": car.id, "shape": "points", "geometry": {"points": [[1, 1]], "closed": True}}], 0, "geometry")


@pytest.mark.parametrize("geometry, field", [
    ({"cx": 5, "cy": 5, "r": 0}, "geometry.r"), ({"cx": 5, "cy": 5, "r": -1}, "geometry.r"),
    ({"cx": 5, "cy": 5, "r": 1000}, "geometry.r"), ({"cx": 5, "cy": 5, "r": float("nan")}, "geometry.r"),
    ({"cx": 100, "cy": 5, "r": 1}, "geometry"), ({"cx": "5", "cy": 5, "r": 1}, "geometry.cx"), ({"cx": 5, "r": 1}, "geometry.cy"),
])
def test_circle_geometry(det, geometry, field):
    _, _, image, car, _ = det
    assert_error(image, [{"label_id": car.id, "shape": "circle", "geometry": geometry}], 0, field)


def test_label_must_belong_to_this_dataset(det):
    _, _, image, car, _ = det
    _, _, _, foreign, _ = setup("detection")
    assert_error(image, [box(foreign)], 0, "label_id")
    assert_error(image, [{**box(car), "label_id": 10**9}], 0, "label_id")
    assert_error(image, [{**box(car), "label_id": str(car.id)}], 0, "label_id")
    assert_error(image, [{**box(car), "label_id": True}], 0, "label_id")
    no_label = box(car)
    del no_label["label_id"]
    assert_error(image, [no_label], 0, "label_id")


@pytest.mark.parametrize("shape", ["tag", "ellipse", "", None])
def test_shape_must_be_known_and_allowed_for_the_dataset_type(det, shape):
    _, _, image, car, _ = det
    assert_error(image, [{"label_id": car.id, "shape": shape, "geometry": {}}], 0, "shape")


def test_attributes_follow_the_labels_definitions(det):
    _, _, image, car, plate = det
    cases = [
        ({"colour": "red"}, "attributes.colour"), ({"color": "green"}, "attributes.color"), ({"color": 1}, "attributes.color"),
        ({"doors": "4"}, "attributes.doors"), ({"doors": float("nan")}, "attributes.doors"), ({"doors": True}, "attributes.doors"),
        ({"parked": "yes"}, "attributes.parked"), ({"parked": 1}, "attributes.parked"),
        ({"note": 5}, "attributes.note"), ({"note": "x" * (service.MAX_TEXT + 1)}, "attributes.note"),
    ]
    for attributes, field in cases:
        assert_error(image, [{**box(car), "attributes": attributes}], 0, field)
    assert_error(image, [{**box(plate), "attributes": {"color": "red"}}], 0, "attributes.color")
    assert_error(image, [{**box(car), "attributes": ["red"]}], 0, "attributes")


def test_text_only_for_labels_with_text_and_bounded(det):
    _, _, image, car, plate = det
    assert_error(image, [{**box(car), "text": "hello"}], 0, "text")
    assert_error(image, [{**box(plate), "text": 12}], 0, "text")
    assert_error(image, [{**box(plate), "text": "x" * (service.MAX_TEXT + 1)}], 0, "text")
    service.validate_annotations(image, [{**box(plate), "text": "x" * service.MAX_TEXT}, {**box(car), "text": ""}])


def test_source_and_score(det):
    _, _, image, car, _ = det
    assert_error(image, [{**box(car), "source": "robot"}], 0, "source")
    for score in (1.5, -0.1, float("nan"), "0.5", True):
        assert_error(image, [{**box(car), "score": score}], 0, "score")


def test_unknown_fields_and_non_objects(det):
    _, _, image, car, _ = det
    assert_error(image, [{**box(car), "colour": "red"}], 0, "annotation")
    assert_error(image, [box(car), "box"], 1, "annotation")
    assert_error(image, {"annotations": []}, None, "annotations")


def test_at_most_2000_annotations(det):
    _, _, image, car, _ = det
    assert_error(image, [box(car)] * (service.MAX_ANNOTATIONS + 1), None, "annotations")
    assert len(service.validate_annotations(image, [box(car)] * service.MAX_ANNOTATIONS)) == service.MAX_ANNOTATIONS


def test_every_problem_is_listed_not_only_the_first(det):
    _, _, image, car, _ = det
    exc = error_of(image, [box(car, width=0), box(car), {**box(car), "text": "t"}])
    assert [(p["index"], p["field"]) for p in exc.details["errors"]] == [(0, "geometry.width"), (2, "text")]
    assert exc.details["field"] == "annotations[0].geometry.width"


def test_classification_takes_exactly_one_tag(app_ctx):
    _, _, image, cat, dog = setup("classification")
    tag = lambda label: {"label_id": label.id, "shape": "tag", "geometry": {}}
    service.validate_annotations(image, [tag(cat)])
    assert_error(image, [tag(cat), tag(dog)], 1, "shape")
    assert_error(image, [{**tag(cat), "geometry": {"x": 1}}], 0, "geometry")
    assert_error(image, [box(cat)], 0, "shape")


def test_multilabel_takes_many_tags_but_each_once(app_ctx):
    _, _, image, cat, dog = setup("multilabel")
    tag = lambda label: {"label_id": label.id, "shape": "tag", "geometry": {}}
    service.validate_annotations(image, [tag(cat), tag(dog)])
    assert_error(image, [tag(cat), tag(dog), tag(cat)], 2, "label_id")


def test_a_rejected_save_changes_nothing(det):
    owner, dataset, image, car, _ = det
    service.replace_annotations(image, owner, [box(car)], 0)
    with pytest.raises(Invalid):
        service.replace_annotations(image, owner, [box(car), box(car, width=-1)], 1)
    db.session.expire_all()
    assert image.revision == 1 and image.state.value == "in_progress"
    assert db.session.scalar(db.select(db.func.count()).select_from(Annotation)) == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(AnnotationRevision)) == 1
    assert dataset.annotation_count == 1 and car.annotation_count == 1 and car.image_count == 1


# None is no error: it replaces whatever is there (a script that does not read first), still as a revision.
@pytest.mark.parametrize("revision", ["1", True, -1, 1.0, 2**63])
def test_revision_must_be_a_whole_number(det, revision):
    owner, _, image, car, _ = det
    with pytest.raises(Invalid) as info:
        service.replace_annotations(image, owner, [box(car)], revision)
    assert info.value.details["field"] == "revision"


def test_a_stale_revision_conflicts_before_anything_is_validated(det):
    owner, _, image, car, _ = det
    service.replace_annotations(image, owner, [box(car)], 0)
    with pytest.raises(Conflict) as info:
        service.replace_annotations(image, owner, [box(car, width=-1)], 0)
    assert info.value.details["current_revision"] == 1 and len(info.value.details["annotations"]) == 1
    assert info.value.details["author"]["id"] == owner.id and info.value.details["saved_at"]
