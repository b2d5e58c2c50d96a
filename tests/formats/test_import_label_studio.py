"""Label Studio JSON import: the three fixture exports counted as their README counts them (after
choosing one annotation per task), one region's geometry by hand each, labels from the config,
predictions with scores, and input that is not an export refused or reported, never a crash."""

import json
import math
import shutil
from collections import Counter
from pathlib import Path

import pytest

from formats import label_studio
from formats.base import NotThisFormat
from tests.support import FORMAT_FIXTURES

FIXTURES = FORMAT_FIXTURES / "label_studio"


def upload(tmp_path: Path, export: str, config: str | None = None) -> Path:
    shutil.copy(FIXTURES / export, tmp_path)
    if config:
        shutil.copy(FIXTURES / config, tmp_path)
    return tmp_path


def write(tmp_path: Path, tasks) -> Path:
    (tmp_path / "export.json").write_text(tasks if isinstance(tasks, str) else json.dumps(tasks))
    return tmp_path


def rectangle(x, y, width, height, label="cat", **extra) -> dict:
    return {"type": "rectanglelabels", "original_width": 200, "original_height": 100,
            "value": {"x": x, "y": y, "width": width, "height": height, "rotation": 0, "rectanglelabels": [label]}, **extra}


def task(*results, image="/data/upload/1/8f3a2b1c-cat.jpg", **extra) -> dict:
    return {"id": 1, "data": {"image": image}, "annotations": [{"id": 10, "result": list(results)}], **extra}


def point_pairs(points) -> list:
    return [pytest.approx(p) for p in points]


def test_two_annotators_import_the_most_recent_annotation(tmp_path):
    result = label_studio.parse(upload(tmp_path, "data.json", "label_config.xml"))
    images = list(result.images)
    assert [(i.path, i.width, i.height, i.units) for i in images] == [("image1", 2800, 2800, "fraction"), ("image2", 2800, 2800, "fraction")]
    # 3 annotations, 6 rectangles (parasites 2, white 4): task 1's annotation 2 (updated last) replaces annotation 1.
    shapes = [a for image in images for a in image.annotations]
    assert Counter(a.label for a in shapes) == {"parasites": 1, "white": 3}
    assert {a.shape for a in shapes} == {"box"}
    assert result.problems == [("data.json, task 1", "2 annotations: imported id 2, the most recent (updated 2022-12-27T21:05:03.127871Z); left out: 1")]
    assert [(label.name, label.color) for label in result.labels] == [("parasites", "#da01ee"), ("white", "#00ff00")]


def test_box_geometry_by_hand(tmp_path):
    images = list(label_studio.parse(upload(tmp_path, "data.json", "label_config.xml")).images)
    box = images[1].annotations[0]
    # x 19.672131147540984 %, y 49.72677595628415 %, width 3.278688524590164 %, height 2.914389799635701 %
    assert box.geometry == pytest.approx({"x": 0.19672131147540984, "y": 0.4972677595628415, "width": 0.03278688524590164, "height": 0.02914389799635701})
    assert (box.label, box.score) == ("white", None)


def test_polygon_export(tmp_path):
    result = label_studio.parse(upload(tmp_path, "data_polygons.json", "label_config_polygons.xml"))
    (image,) = result.images
    (polygon,) = image.annotations
    assert (image.path, image.width, image.height) == ("image2", 640, 426)
    assert (polygon.label, polygon.shape, len(polygon.geometry["points"])) == ("Airplane", "polygon", 37)
    assert polygon.geometry["points"][:2] == point_pairs([[0.60, 0.1955922865013774], [0.6110091743119266, 0.15151515151515152]])
    assert [(label.name, label.color) for label in result.labels] == [("Airplane", "#ff0000"), ("Car", "#0000ff")]


def test_rotated_rectangles_become_polygons_and_labels_differ_in_case(tmp_path):
    result = label_studio.parse(upload(tmp_path, "data_obb.json", "label_config_obb.xml"))
    images = list(result.images)
    assert [(i.path, i.width, i.height) for i in images] == [("image1", 597, 768), ("image2", 433, 768), ("image3", 716, 768)]
    shapes = [a for image in images for a in image.annotations]
    assert len(shapes) == 25 and {a.shape for a in shapes} == {"polygon"}
    assert Counter(a.label for a in shapes) == {"Butterfly": 24, "butterfly": 1}
    # Loupe's label names are unique without case: the config's spelling stands for both.
    assert [label.name for label in result.labels] == ["butterfly"]


def test_rotated_corners_by_hand(tmp_path):
    images = list(label_studio.parse(upload(tmp_path, "data_obb.json", "label_config_obb.xml")).images)
    first = images[0].annotations[0].geometry["points"]
    # x 10.537066764905694 %, y 79.55767690059092 %, width 19.045470024656687 %, height 8.132522043893882 %,
    # rotation 328.33240366032834 degrees about the top-left corner, on 597 x 768 pixels.
    x, y, w, h = 0.10537066764905694 * 597, 0.7955767690059092 * 768, 0.19045470024656687 * 597, 0.08132522043893882 * 768
    turn = math.radians(328.33240366032834)
    top_right = (x + w * math.cos(turn), y + w * math.sin(turn))
    bottom_left = (x - h * math.sin(turn), y + h * math.cos(turn))
    assert first[0] == point_pairs([[0.10537066764905694, 0.7955767690059092]])[0]
    assert first[1] == pytest.approx([top_right[0] / 597, top_right[1] / 768])
    assert first[3] == pytest.approx([bottom_left[0] / 597, bottom_left[1] / 768])
    assert first[1] == pytest.approx([0.26747, 0.71785], abs=1e-5)


def test_of_several_configs_the_one_named_for_the_export_is_read(tmp_path):
    upload(tmp_path, "data_obb.json", "label_config.xml")
    for config in ("label_config_obb.xml", "label_config_polygons.xml"):
        shutil.copy(FIXTURES / config, tmp_path)
    assert [label.name for label in label_studio.parse(tmp_path).labels] == ["butterfly"]


def test_without_a_config_labels_are_the_names_found(tmp_path):
    result = label_studio.parse(upload(tmp_path, "data_obb.json"))
    assert [label.name for label in result.labels] == ["Butterfly"]


def test_other_region_types_and_choices(tmp_path):
    write(tmp_path, [task(
        {"type": "keypointlabels", "original_width": 200, "original_height": 100, "value": {"x": 50, "y": 25, "width": 1, "keypointlabels": ["nose"]}},
        {"type": "ellipselabels", "original_width": 200, "original_height": 100,
         "value": {"x": 50, "y": 50, "radiusX": 10, "radiusY": 20, "rotation": 0, "ellipselabels": ["eye"]}},
        {"type": "choices", "value": {"choices": ["indoor", "night"]}},
        {"id": "r1", "type": "rectangle", "value": {"x": 10, "y": 10, "width": 20, "height": 20}},
        {"id": "r1", "type": "labels", "value": {"labels": ["cat"]}},
        {"type": "relation", "from_id": "a", "to_id": "b"},
    )])
    result = label_studio.parse(tmp_path)
    (image,) = result.images
    assert (image.path, image.width, image.height) == ("8f3a2b1c-cat.jpg", 200, 100)
    point, circle, indoor, night, box = image.annotations
    assert (point.shape, point.geometry) == ("points", {"points": [[0.5, 0.25]]})
    # radiusX 10 % of 200 px and radiusY 20 % of 100 px: 20 px both, a circle; r of the width.
    assert (circle.shape, circle.geometry) == ("circle", {"cx": 0.5, "cy": 0.5, "r": 0.1})
    assert [(t.label, t.shape) for t in (indoor, night)] == [("indoor", "tag"), ("night", "tag")]
    assert (box.label, box.shape, box.geometry) == ("cat", "box", pytest.approx({"x": 0.1, "y": 0.1, "width": 0.2, "height": 0.2}))
    assert result.problems == [("export.json", "1 results of type 'relation' (Loupe has no shape for them) left out")]
    assert [label.name for label in result.labels] == ["nose", "eye", "indoor", "night", "cat"]


def test_a_circle_on_a_tall_image_has_r_of_its_width(tmp_path):
    write(tmp_path, [task({"type": "ellipselabels", "original_width": 100, "original_height": 400,
                           "value": {"x": 50, "y": 50, "radiusX": 20, "radiusY": 5, "ellipselabels": ["eye"]}})])
    (image,) = label_studio.parse(tmp_path).images
    # 20 % of 100 px = 5 % of 400 px = 20 px: r is 0.2 of the 100 px width (services/shapes.py).
    assert (image.annotations[0].shape, image.annotations[0].geometry) == ("circle", {"cx": 0.5, "cy": 0.5, "r": 0.2})


def test_an_oval_ellipse_is_a_polygon_on_it(tmp_path):
    write(tmp_path, [task({"type": "ellipselabels", "original_width": 200, "original_height": 100,
                           "value": {"x": 50, "y": 50, "radiusX": 20, "radiusY": 20, "ellipselabels": ["eye"]}})])
    (image,) = label_studio.parse(tmp_path).images
    points = image.annotations[0].geometry["points"]
    assert image.annotations[0].shape == "polygon"
    assert all(math.isclose(((x * 200 - 100) / 40) ** 2 + ((y * 100 - 50) / 20) ** 2, 1) for x, y in points)


def test_predictions_import_with_their_scores_when_no_one_annotated(tmp_path):
    write(tmp_path, [
        {"id": 1, "data": {"image": "/a.jpg"}, "annotations": [],
         "predictions": [{"id": 5, "score": 0.7, "result": [rectangle(1, 2, 3, 4), rectangle(1, 2, 3, 4, score=0.9)]}]},
        {"id": 2, "data": {"image": "/b.jpg"}, "annotations": [{"id": 9, "result": [rectangle(1, 2, 3, 4, label="dog")]}],
         "predictions": [{"id": 6, "score": 0.5, "result": [rectangle(1, 2, 3, 4)]}]},
        {"id": 3, "data": {"image": "/c.jpg"}, "predictions": [{"id": 7, "result": [rectangle(1, 2, 3, 4)]}]},
    ])
    result = label_studio.parse(tmp_path)
    a, b, c = result.images
    assert [x.score for x in a.annotations] == [0.7, 0.9]
    assert [(x.label, x.score) for x in b.annotations] == [("dog", None)]
    assert c.annotations == []
    assert result.problems == [("export.json, task 2", "1 predictions left out: the task has an annotation"),
                               ("export.json", "1 results without a score left out")]


def test_cancelled_annotations_do_not_count(tmp_path):
    write(tmp_path, [task(rectangle(1, 1, 1, 1, label="dog")) | {"annotations": [
        {"id": 1, "updated_at": "2024-01-01T00:00:00Z", "result": [rectangle(1, 1, 1, 1, label="dog")]},
        {"id": 2, "updated_at": "2024-02-01T00:00:00Z", "was_cancelled": True, "result": [rectangle(1, 1, 1, 1, label="cat")]},
    ]}])
    result = label_studio.parse(tmp_path)
    (image,) = result.images
    assert [a.label for a in image.annotations] == ["dog"] and result.problems == []


@pytest.mark.parametrize("url, path", [
    ("/data/upload/1/8f3a2b1c-cat.jpg", "8f3a2b1c-cat.jpg"),
    ("https://example.com/images/a%20b.png?X-Amz-Signature=1", "a b.png"),
    ("/data/local-files/?d=photos/street/c.jpg", "c.jpg"),
    ("s3://bucket/dir/d.jpeg", "d.jpeg"),
    ("data:image/png;base64,AAAA", None),
    ("https://example.com/", None),
])
def test_image_paths_from_urls(url, path):
    assert label_studio.image_path(url) == path


def test_an_image_in_the_upload_is_its_file(tmp_path):
    write(tmp_path, [task(rectangle(1, 1, 1, 1), image="/data/upload/1/cat.jpg")])
    (tmp_path / "images").mkdir()
    (tmp_path / "images/cat.jpg").write_bytes(b"\xff\xd8")
    (image,) = label_studio.parse(tmp_path).images
    assert image.file == tmp_path / "images/cat.jpg"


def test_bad_regions_are_problems_on_their_image(tmp_path):
    write(tmp_path, '[{"id": 1, "data": {"image": "/a.jpg"}, "annotations": [{"result": ['
                    '{"type": "rectanglelabels", "value": {"x": NaN, "y": 1, "width": "2", "height": 3, "rectanglelabels": ["cat"]}},'
                    '{"type": "rectanglelabels", "value": {"x": 1, "y": 1, "width": 2, "height": 3, "rotation": 30, "rectanglelabels": ["cat"]}},'
                    '{"type": "polygonlabels", "value": {"points": [[1, 2], [3]], "polygonlabels": ["cat"]}},'
                    '{"type": "rectanglelabels", "value": {"x": 1, "y": 1, "width": 2, "height": 3, "rectanglelabels": []}},'
                    '{"type": "keypointlabels", "value": {"x": 1, "y": 1, "keypointlabels": ["nose"]}}]}]},'
                    '{"id": 2, "data": {"image": "/a.jpg"}}]')
    result = label_studio.parse(tmp_path)
    first, second = result.images
    assert [a.shape for a in first.annotations] == ["points"]
    assert first.problems == [
        "result 1 (rectanglelabels None): x is nan, width is '2', not finite numbers; that result is left out",
        "result 2 (rectanglelabels None): it is rotated and the image's original_width/original_height are not given; that result is left out",
        "result 3 (polygonlabels None): points is not a list of [x, y] finite numbers; that result is left out",
        "result 4 (rectanglelabels None): it has no label; that result is left out",
    ]
    assert second.problems == ["another task of the export names the image 'a.jpg'; this one's annotations are not applied"]


def test_tasks_without_an_image_are_left_out_with_a_problem(tmp_path):
    write(tmp_path, [{"id": 1, "data": {"text": "hello"}}, {"id": 2, "data": {"image": 5}}, {"id": 3, "data": []}, 7,
                     task(rectangle(1, 1, 1, 1), image="/ok.jpg")])
    result = label_studio.parse(tmp_path)
    assert [image.path for image in result.images] == ["ok.jpg"]
    assert result.problems == [
        ("export.json, task 1", "data.image is None, not an image URL; the task is left out"),
        ("export.json, task 2", "data.image is 5, not an image URL; the task is left out"),
        ("export.json, task 3", "data.image is None, not an image URL; the task is left out"),
        ("export.json, item 4", "not a task object; left out"),
    ]


def test_the_config_names_the_data_key_and_a_bad_config_is_a_problem(tmp_path):
    write(tmp_path, [{"id": 1, "data": {"photo": "/a.jpg"}, "annotations": [{"result": [rectangle(1, 1, 1, 1)]}]}])
    (tmp_path / "label_config.xml").write_text('<View><Image name="i" value="$photo"/><RectangleLabels name="l" toName="i">'
                                               '<Label value="cat" background="#FFAA00"/></RectangleLabels></View>')
    result = label_studio.parse(tmp_path)
    assert [image.path for image in result.images] == ["a.jpg"]
    assert [(label.name, label.color) for label in result.labels] == [("cat", "#ffaa00")]
    (tmp_path / "label_config.xml").write_text('<!DOCTYPE View [<!ENTITY x "y">]><View/>')
    result = label_studio.parse(tmp_path)
    assert result.problems[0][0] == "label_config.xml" and "DOCTYPE" in result.problems[0][1]


@pytest.mark.parametrize("text, message", [
    ('{"images": [], "annotations": []}', "holds a JSON dict, not Label Studio's list of tasks"),
    ("[1, 2, 3]", "is a list, but not of Label Studio tasks"),
    ('[{"image": "a.jpg", "label": "cat"}]', "is a list, but not of Label Studio tasks"),
    ("[{", "is not JSON"),
    ("", "is not JSON"),
])
def test_what_is_not_an_export_is_not_this_format(tmp_path, text, message):
    write(tmp_path, text)
    with pytest.raises(NotThisFormat, match=message):
        label_studio.parse(tmp_path)


def test_not_exactly_one_json_is_not_this_format(tmp_path):
    with pytest.raises(NotThisFormat, match="found 0"):
        label_studio.parse(tmp_path)
    write(tmp_path, [])
    (tmp_path / "other.json").write_text("[]")
    with pytest.raises(NotThisFormat, match="found 2"):
        label_studio.parse(tmp_path)


def test_an_empty_export_has_no_images(tmp_path):
    result = label_studio.parse(write(tmp_path, []))
    assert (list(result.images), result.labels, result.problems) == ([], [], [])


def test_non_utf8_is_not_this_format(tmp_path):
    (tmp_path / "export.json").write_bytes(b"[\xff\xfe]")
    with pytest.raises(NotThisFormat, match="is not JSON"):
        label_studio.parse(tmp_path)
