"""CVAT for images 1.1 import: the project and task fixtures counted as their README counts them,
one shape's geometry and attributes by hand, subsets as paths and splits, and bad XML refused."""

import math
import shutil
from collections import Counter
from pathlib import Path

import pytest

from formats import cvat, safe_xml
from formats.base import NotThisFormat
from services.shapes import CIRCLE_VERTICES
from tests.support import FORMAT_FIXTURES

FIXTURES = FORMAT_FIXTURES


def parsed(folder: Path):
    result = cvat.parse(folder)
    return result, list(result.images)


def write(tmp_path: Path, body: str, meta: str = "", name: str = "annotations.xml") -> Path:
    (tmp_path / name).write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>'
                                 f"<meta><task><labels>{meta}</labels></task></meta>{body}</annotations>")
    return tmp_path


LABELS = ("<label><name>car</name><color>#FF0000</color><attributes>"
          "<attribute><name>parked</name><input_type>checkbox</input_type><default_value>false</default_value><values>false\ntrue</values></attribute>"
          "<attribute><name>kind</name><input_type>select</input_type><default_value>sedan</default_value><values>sedan\nstation wagon</values></attribute>"
          "</attributes></label>")


def test_project_export_counts_as_its_readme():
    result, images = parsed(FIXTURES / "cvat_for_images_1_1")
    assert len(images) == 6
    assert Counter(image.split for image in images) == {"test": 2, "train": 2, "validation": 2}
    shapes = [a for image in images for a in image.annotations]
    assert Counter(a.shape for a in shapes) == {"box": 3, "polygon": 3, "points": 3, "polyline": 3}
    assert sum(len({k: v for k, v in a.attributes.items() if k != "occluded"}) for a in shapes) == 12
    assert sum(a.attributes.get("occluded") is True for a in shapes) == 3
    assert [label.name for label in result.labels] == ["label1", "label2"]
    assert not result.problems and not any(image.problems for image in images)


def test_project_subsets_become_unique_paths_with_their_files():
    _, images = parsed(FIXTURES / "cvat_for_images_1_1")
    assert [image.path for image in images] == ["Test/img0.jpg", "Test/img1.jpg", "Train/img0.jpg", "Train/img1.jpg",
                                                "Validation/img0.jpg", "Validation/img1.jpg"]
    assert images[2].file == FIXTURES / "cvat_for_images_1_1/images/Train/img0.jpg"
    assert (images[2].width, images[2].height, images[2].units) == (8, 8, "pixel")


def test_box_geometry_and_typed_attributes_by_hand():
    _, images = parsed(FIXTURES / "cvat_for_images_1_1")
    box, polyline = images[0].annotations
    # <box xtl="0" ytl="2" xbr="4" ybr="4" occluded="1">, a1 true, a2 v3, a3 0003, a4 2.4
    assert (box.label, box.shape, box.geometry) == ("label1", "box", {"x": 0, "y": 2, "width": 4, "height": 2})
    assert box.attributes == {"a1": True, "a2": "v3", "a3": "0003", "a4": 2.4, "occluded": True}
    assert type(box.attributes["a1"]) is bool and type(box.attributes["a3"]) is str
    # "1.0,2;3,4;5,6;7,8": int and float mixed
    assert polyline.shape == "polyline" and polyline.geometry == {"points": [[1, 2], [3, 4], [5, 6], [7, 8]]}
    assert box.score is None


def test_meta_attribute_definitions_become_loupes():
    result, _ = parsed(FIXTURES / "cvat_for_images_1_1")
    label1, label2 = result.labels
    assert list(label1.attributes) == [
        {"name": "a1", "type": "checkbox", "default": False},
        {"name": "a2", "type": "select", "values": ["v1", "v2", "v3"], "default": "v1"},
        {"name": "a3", "type": "text", "default": "0000"},
        {"name": "a4", "type": "number", "default": 0},
        {"name": "occluded", "type": "checkbox", "default": False},  # label1's boxes are occluded
    ]
    assert label2.attributes == ()


def test_task_export_split_from_file_name_and_unlabelled_shapes_left_out():
    result, images = parsed(FIXTURES / "cvat_for_images_1_1_task")
    assert [(image.path, image.split) for image in images] == [("img0.jpg", "train"), ("img1.jpg", "train")]
    assert images[0].file == FIXTURES / "cvat_for_images_1_1_task/images/img0.jpg"
    assert [a.shape for a in images[0].annotations] == ["box"]
    assert [a.shape for a in images[1].annotations] == ["points"]
    assert images[0].problems == ["shape 2 (<polyline> label ''): it has no label; that shape is left out"]
    assert images[1].problems == ["shape 1 (<polygon> label ''): it has no label; that shape is left out"]
    assert [label.name for label in result.labels] == ["label1", "label2"]


def test_upload_alone_keeps_cvat_names_and_label_colors(tmp_path):
    write(tmp_path, '<image id="0" name="street/a.jpg" width="100" height="50">'
                    '<box label="car" xtl="10" ytl="5" xbr="30" ybr="25"><attribute name="parked">true</attribute>'
                    '<attribute name="kind">station wagon</attribute></box><tag label="night"/></image>', LABELS)
    result, (image,) = parsed(tmp_path)
    assert (image.path, image.split, image.file) == ("street/a.jpg", None, None)
    box, tag = image.annotations
    assert box.attributes == {"parked": True, "kind": "station wagon"}
    assert (tag.label, tag.shape, tag.geometry) == ("night", "tag", {})
    assert [(label.name, label.color) for label in result.labels] == [("car", "#ff0000"), ("night", None)]


def test_rotated_box_is_its_rotated_corners(tmp_path):
    write(tmp_path, '<image id="0" name="a.jpg" width="100" height="100">'
                    '<box label="car" xtl="10" ytl="10" xbr="30" ybr="20" rotation="90"/></image>', LABELS)
    _, (image,) = parsed(tmp_path)
    (shape,) = image.annotations
    # 90 degrees clockwise (y down) about the centre (20, 15): the top-left corner goes to (25, 5).
    assert shape.shape == "polygon"
    assert [pytest.approx(point) for point in shape.geometry["points"]] == [[25, 5], [25, 25], [15, 25], [15, 5]]


def test_ellipse_is_a_circle_or_a_polygon(tmp_path):
    write(tmp_path, '<image id="0" name="a.jpg" width="100" height="100">'
                    '<ellipse label="car" cx="50" cy="40" rx="10" ry="10"/><ellipse label="car" cx="50" cy="40" rx="20" ry="10"/></image>', LABELS)
    _, (image,) = parsed(tmp_path)
    circle, ellipse = image.annotations
    assert (circle.shape, circle.geometry) == ("circle", {"cx": 50, "cy": 40, "r": 10})
    assert ellipse.shape == "polygon" and len(ellipse.geometry["points"]) == CIRCLE_VERTICES
    assert ellipse.geometry["points"][0] == [70, 40]
    assert all(math.isclose(((x - 50) / 20) ** 2 + ((y - 40) / 10) ** 2, 1) for x, y in ellipse.geometry["points"])


def test_a_bad_shape_is_left_out_with_a_problem_on_its_image(tmp_path):
    write(tmp_path, '<image id="0" name="a.jpg" width="100" height="100">'
                    '<box label="car" xtl="nan" ytl="0" xbr="1" ybr="1"/>'
                    '<polygon label="car" points="1,2;x,4"/>'
                    '<box label="car" xtl="0" ytl="0" xbr="1" ybr="1"><attribute name="parked">maybe</attribute></box>'
                    '<box label="car" xtl="0" ytl="0" xbr="1" ybr="1"><attribute name="kind">truck</attribute></box>'
                    '<mask label="car" rle="1, 2" left="0" top="0" width="1" height="3"/>'
                    '<points label="car" points="5,5"/></image>', LABELS)
    _, (image,) = parsed(tmp_path)
    assert [a.shape for a in image.annotations] == ["points"]
    assert image.problems == [
        "shape 1 (<box> label 'car'): xtl is 'nan', not a finite number; that shape is left out",
        "shape 2 (<polygon> label 'car'): points has 'x,4', not x,y; that shape is left out",
        "shape 3 (<box> label 'car'): attribute 'parked': 'maybe' is not true or false; that shape is left out",
        "shape 4 (<box> label 'car'): attribute 'kind': 'truck' is not one of sedan, station wagon; that shape is left out",
        "shape 5 (<mask> label 'car'): Loupe has no mask shape; that shape is left out",
    ]


def test_undefined_attributes_get_text_definitions(tmp_path):
    write(tmp_path, '<image id="0" name="a.jpg" width="9" height="9">'
                    '<box label="bus" xtl="0" ytl="0" xbr="1" ybr="1" occluded="1"><attribute name="note">old</attribute></box></image>')
    result, (image,) = parsed(tmp_path)
    assert image.annotations[0].attributes == {"note": "old", "occluded": True}
    assert result.labels[0].attributes == ({"name": "occluded", "type": "checkbox", "default": False}, {"name": "note", "type": "text"})


def test_several_files_are_subsets_and_repeated_paths_are_problems(tmp_path):
    image = '<image id="0" name="a.jpg" width="9" height="9"><box label="car" xtl="0" ytl="0" xbr="1" ybr="1"/></image>'
    write(tmp_path, image, name="train.xml")
    write(tmp_path, image * 2, name="val.xml")
    _, images = parsed(tmp_path)
    assert [(i.path, i.split) for i in images] == [("train/a.jpg", "train"), ("val/a.jpg", "validation"), ("val/a.jpg", "validation")]
    assert not images[0].problems and not images[1].problems
    assert images[2].problems == ["another <image> of the upload has the path 'val/a.jpg'; this one's annotations are not applied"]


def test_unsafe_names_and_tracks_are_reported(tmp_path):
    write(tmp_path, '<image id="7" name="../../etc/passwd" width="9" height="9"/><track id="0" label="car"/>')
    result, images = parsed(tmp_path)
    assert images == []
    assert result.problems == [
        ("annotations.xml, <image id='7'>", "name '../../etc/passwd' is not a relative file path; the image is left out"),
        ("annotations.xml", "1 <track> elements (CVAT for video) are not imported; export as CVAT for images 1.1"),
    ]


@pytest.mark.parametrize("text, message", [
    ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><annotations>&x;</annotations>', "has a DOCTYPE"),
    ('<!DOCTYPE annotations SYSTEM "file:///etc/passwd"><annotations/>', "has a DOCTYPE"),
    ("<annotations><image name='a.jpg'></annotations>", "is not well-formed XML"),
    ("<annotations>&lol;</annotations>", "is not well-formed XML"),
    ("", "is not well-formed XML"),
    ('{"images": []}', "is not well-formed XML"),
    ("<annotation><filename>a.jpg</filename></annotation>", "the root element is <annotation>, not CVAT's <annotations>"),
])
def test_bad_xml_is_not_this_format(tmp_path, text, message):
    (tmp_path / "annotations.xml").write_text(text)
    with pytest.raises(NotThisFormat, match=message):
        parsed(tmp_path)


def test_no_xml_is_not_this_format(tmp_path):
    shutil.copy(FIXTURES / "cvat_for_images_1_1/images/Test/img0.jpg", tmp_path)
    with pytest.raises(NotThisFormat, match="No XML file found"):
        parsed(tmp_path)


def test_a_file_larger_than_a_chunk_parses_whole(tmp_path):
    count = 20000  # about 2.2 MB: elements split across expat's chunks
    write(tmp_path, "".join(f'<image id="{i}" name="{i}.jpg" width="9" height="9"><box label="car" xtl="0" ytl="0" xbr="1" ybr="{1 + i % 7}"/></image>'
                            for i in range(count)), LABELS)
    assert (tmp_path / "annotations.xml").stat().st_size > 2 * safe_xml.CHUNK
    _, images = parsed(tmp_path)
    assert len(images) == count
    assert [image.annotations[0].geometry["height"] for image in images[:8]] == [1, 2, 3, 4, 5, 6, 7, 1]
