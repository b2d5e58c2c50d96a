"""Pascal VOC import: the fixture's counts and boxes, our export read back exactly, and bad files
giving NotThisFormat or a problem, never another exception."""

import shutil
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from formats import voc
from formats.base import NotThisFormat
from services.shapes import bbox
from tests.formats.memory_source import MemorySource, box, circle, labels, polygon, run_export, tag
from tests.support import FORMAT_FIXTURES

FIXTURE = FORMAT_FIXTURES / "voc_detection"

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;"><!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">]>
<annotation><filename>bomb.jpg</filename><object><name>&i;</name></object></annotation>"""


def xml(filename="a.jpg", *objects: str, size="<size><width>40</width><height>30</height><depth>3</depth></size>") -> bytes:
    return f"<annotation><filename>{filename}</filename>{size}{''.join(objects)}</annotation>".encode()


def obj(name="cat", xmin="1", ymin="2", xmax="10", ymax="20", extra="") -> str:
    return (f"<object><name>{name}</name>{extra}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def extract(path: Path, into: Path) -> Path:
    with zipfile.ZipFile(path) as archive:
        archive.extractall(into)
    return into


def test_voc_detection_fixture_gives_the_readme_counts():
    parsed = voc.parse(FIXTURE)
    images = {image.path: image for image in parsed.images}
    assert sorted(images) == ["2007_000001.jpg", "2007_000002.jpg"]
    assert Counter(image.split for image in images.values()) == {"train": 1, "test": 1}
    annotated, empty = images["2007_000001.jpg"], images["2007_000002.jpg"]
    assert [(a.label, a.shape) for a in annotated.annotations] == [("cat", "box"), ("person", "box")]
    assert empty.annotations == [] and empty.split == "test" and empty.file == FIXTURE / "JPEGImages/2007_000002.jpg"
    assert (annotated.width, annotated.height, annotated.units) == (20, 10, "pixel")
    assert annotated.file == FIXTURE / "JPEGImages/2007_000001.jpg" and annotated.problems == []
    # cat: xmin 1, ymin 2, xmax 3, ymax 4 in VOC's 1-based inclusive pixels: columns 0-2 and rows 1-3.
    cat, person = annotated.annotations
    assert cat.geometry == {"x": 0, "y": 1, "width": 3, "height": 3}
    assert person.geometry == {"x": 3, "y": 4, "width": 3, "height": 3}
    assert cat.attributes == {"truncated": True}
    assert person.attributes == {name: True for name in ("other", "phoning", "reading", "ridinghorse", "takingphoto", "walking")}
    # The per-class lists (cat_train.txt says -1) are not read: no tags, only the XML's two labels.
    assert [label.name for label in parsed.labels] == ["cat", "person"]
    assert parsed.labels[0].attributes == ({"name": "truncated", "type": "checkbox", "default": False},)
    assert len(parsed.labels[1].attributes) == 6
    assert parsed.problems == [("Annotations/2007_000001.xml", "object 2 (person): 1 <part> left out, Loupe has no parts of an object")]


def test_a_layout_one_folder_down_reads_the_same(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "VOCdevkit" / "VOC2007")
    nested, flat = voc.parse(tmp_path), voc.parse(FIXTURE)
    assert [(i.path, i.split, len(i.annotations)) for i in nested.images] == [(i.path, i.split, len(i.annotations)) for i in flat.images]
    assert nested.problems == [("VOCdevkit/VOC2007/Annotations/2007_000001.xml", flat.problems[0][1])]


def test_a_lone_xml_is_its_image_without_a_file(tmp_path):
    write(tmp_path, {"upload.xml": xml("dog.png", obj("dog", "0.5", "1", "3.25", "4"))})
    parsed = voc.parse(tmp_path)
    (image,) = parsed.images
    assert (image.path, image.file, image.split, image.width, image.height) == ("dog.png", None, None, 40, 30)
    assert image.annotations[0].geometry == {"x": -0.5, "y": 0, "width": 3.75, "height": 4}
    assert [label.name for label in parsed.labels] == ["dog"] and parsed.problems == []


def test_labelimg_xmls_beside_their_images(tmp_path):
    write(tmp_path, {"shots/a.xml": xml("a.jpg", obj()), "shots/a.jpg": b"jpeg", "shots/b.xml": xml("", obj("dog")), "shots/b.png": b"png"})
    images = {image.path: image for image in voc.parse(tmp_path).images}
    assert images["a.jpg"].file == tmp_path / "shots/a.jpg"
    # No <filename>: the image beside the XML with its stem names it.
    assert images["b.png"].file == tmp_path / "shots/b.png" and images["b.png"].annotations[0].label == "dog"


def test_splits_from_imagesets_trainval_only_trains_and_a_conflict_is_a_problem(tmp_path):
    write(tmp_path, {
        **{f"JPEGImages/{n}.jpg": b"jpeg" for n in "abcdef"},
        "ImageSets/Main/train.txt": b"a\nd\n", "ImageSets/Main/val.txt": b"b\r\n", "ImageSets/Main/test.txt": b"c\nd",
        "ImageSets/Main/trainval.txt": b"a\nb\ne\n", "ImageSets/Segmentation/val.txt": b"f\n",
        "ImageSets/Main/review.txt": b"ghost\n",
    })
    parsed = voc.parse(tmp_path)
    assert {i.path: i.split for i in parsed.images} == {
        "a.jpg": "train", "b.jpg": "validation", "c.jpg": "test", "d.jpg": "train", "e.jpg": "train", "f.jpg": "validation"}
    assert parsed.problems == [("ImageSets/Main/test.txt", "d is listed in train too: kept there"),
                               ("ImageSets", "1 listed ids have no XML and no image in JPEGImages: ghost")]


def test_labelmap_gives_label_order_and_colours(tmp_path):
    write(tmp_path, {
        "labelmap.txt": b"# label:color_rgb:parts:actions\nbackground:0,0,0::\nzebra:128,0,0::\nsign: stop:0,128,0:a,b:\nbad:1,2::\n",
        "Annotations/a.xml": xml("a.jpg", obj("cat"), obj("zebra")),
    })
    parsed = voc.parse(tmp_path)
    assert [(label.name, label.color) for label in parsed.labels] == [
        ("zebra", "#800000"), ("sign: stop", "#008000"), ("bad", None), ("cat", None)]
    assert parsed.problems == [("labelmap.txt:5", "the colour of 'bad' is not r,g,b: '1,2'")]


def detection_source() -> MemorySource:
    cat, dog, sky = labels("cat", "dog", "sky")
    source = MemorySource(labels=(cat, dog, sky))
    source.add("a.jpg", box(cat, 0, 0, 16, 12), box(dog, 2.5, 3.125, 4.75, 5.1), tag(sky), split="train")
    source.add("b.png", polygon(dog, (1.5, 2), (30, 2.25), (15, 20)), circle(cat, 20, 10, 4.5),
               size=(40, 24), split="validation", fmt="PNG")
    source.add("c.jpg", box(cat, 0.25, 0.5, 0.5, 0.75), folder="park/north", split="test")
    source.add("odd: name?.jpg", box(dog, 1, 1, 2, 2), split="unassigned")
    source.add("e.jpg", split="review")
    return source


@pytest.mark.parametrize("options", [{}, {"full_path": True, "masks": True}])
def test_our_export_reads_back_exactly(tmp_path, options):
    source = detection_source()
    _, _, path = run_export(voc, source, tmp_path, **options)
    parsed = voc.parse(extract(path, tmp_path / "out"))
    assert [label.name for label in parsed.labels] == ["cat", "dog", "sky"]
    assert all(label.attributes == () and label.color for label in parsed.labels)
    assert parsed.problems == []
    names = {label.id: label.name for label in source.labels}
    by_path = {image.path: image for image in parsed.images}
    assert len(by_path) == len(source.records)
    for record in source.records:
        image = by_path[record.path if options else record.file_name]
        assert (image.split, image.width, image.height, image.units) == (record.split, record.width, record.height, "pixel")
        assert image.problems == []
        assert image.file.read_bytes() == source.blobs[record.storage_key]
        # Whole-image tags go to VOC's classification lists, which the import does not read.
        expected = [(names[a.label_id], bbox(a.shape, a.geometry)) for a in record.annotations if a.shape != "tag"]
        assert [(a.label, a.shape, a.attributes) for a in image.annotations] == [(name, "box", {}) for name, _ in expected]
        for annotation, (_, (x, y, w, h)) in zip(image.annotations, expected):
            got = annotation.geometry
            assert [got["x"], got["y"], got["width"], got["height"]] == pytest.approx([x, y, w, h], abs=1e-6)


def test_attributes_that_differ_from_the_defaults_come_back_declared(tmp_path):
    extra = "<pose>Left</pose><truncated>0</truncated><difficult>1</difficult><occluded>true</occluded>"
    defaults_but_truncated = "<pose>Unspecified</pose><truncated>1</truncated>"
    write(tmp_path, {"Annotations/a.xml": xml("a.jpg", obj("cat", extra=extra), obj("cat", extra=defaults_but_truncated))})
    parsed = voc.parse(tmp_path)
    first, second = parsed.images[0].annotations
    assert first.attributes == {"difficult": True, "occluded": True, "pose": "Left"} and second.attributes == {"truncated": True}
    assert parsed.labels[0].attributes == (
        {"name": "difficult", "type": "checkbox", "default": False}, {"name": "occluded", "type": "checkbox", "default": False},
        {"name": "pose", "type": "text"}, {"name": "truncated", "type": "checkbox", "default": False})


@pytest.mark.parametrize("files", [
    {},
    {"notes.txt": b"hello"},
    {"upload.xml": b"<annotation><filename>a.jpg"},  # not well-formed
    {"upload.xml": b"<annotations><image name='a.jpg'/></annotations>"},  # CVAT's XML
    {"upload.xml": BOMB},
    {"upload.xml": b"\xff\xfe\x00garbage"},
    {"upload.xml": b"<annotation><object><name>cat</name></object></annotation>"},  # names no image
], ids=["empty", "no-xml", "malformed", "cvat", "entity-bomb", "binary", "no-filename"])
def test_an_upload_that_is_not_voc_is_refused(tmp_path, files):
    write(tmp_path, files)
    started = time.monotonic()
    with pytest.raises(NotThisFormat, match="Not Pascal VOC"):
        voc.parse(tmp_path)
    assert time.monotonic() - started < 5


BAD_XMLS = [
    (b"<annotation><filename>bad.jpg</filename><object>", "could not be read"),
    (BOMB, "could not be read"),
    (b"<?xml version='1.0'?><!DOCTYPE annotation SYSTEM 'http://example.com/x.dtd'><annotation/>", "could not be read"),
    (b"<annotations/>", "could not be read"),
    (xml("bad.jpg", obj(xmin="one")), "bndbox xmin is 'one', not a number"),
    (xml("bad.jpg", obj(xmax="nan")), "is not finite"),
    (xml("bad.jpg", obj(ymin="inf")), "is not finite"),
    (xml("bad.jpg", obj(xmin="10", xmax="5")), "bndbox ends before it starts"),
    (xml("bad.jpg", obj(name="")), "no <name>"),
    (xml("bad.jpg", "<object><name>cat</name></object>"), "no bndbox xmin"),
    (xml("bad.jpg", obj(extra="<truncated>maybe</truncated>")), "<truncated> is 'maybe', not 0 or 1"),
]


@pytest.mark.parametrize("data, problem", BAD_XMLS, ids=[
    "truncated", "entity-bomb", "external-dtd", "wrong-root", "not-a-number", "nan", "inf", "inverted", "no-name", "no-bndbox", "bad-flag"])
def test_a_bad_xml_is_a_problem_of_its_image_and_the_others_import(tmp_path, data, problem):
    write(tmp_path, {"Annotations/good.xml": xml("good.jpg", obj()), "JPEGImages/good.jpg": b"jpeg",
                     "Annotations/bad.xml": data, "JPEGImages/bad.jpg": b"jpeg"})
    parsed = voc.parse(tmp_path)
    images = {image.path: image for image in parsed.images}
    assert len(images["good.jpg"].annotations) == 1 and images["good.jpg"].problems == []
    bad = images["bad.jpg"]
    assert bad.file == tmp_path / "JPEGImages/bad.jpg"
    assert len(bad.problems) == 1 and problem in bad.problems[0]
    # A file that could not be read is named in Parsed's problems too.
    assert ("could not be read" in problem) == any(where == "Annotations/bad.xml" for where, _ in parsed.problems)


def test_odd_values_are_kept_out_but_do_not_stop_the_import(tmp_path):
    write(tmp_path, {
        "Annotations/a.xml": xml("../../outside.jpg", obj(), size="<size><width>wide</width><height>0</height></size>"),
        "outside.jpg": b"jpeg",
        "Annotations/b.xml": b"<annotation><size><width>4</width></size></annotation>",  # no filename, no image
        "ImageSets/Main/train.txt": b"\xff\xfe",
        "labelmap.txt": b"justaname\n",
    })
    parsed = voc.parse(tmp_path)
    (image,) = parsed.images
    assert (image.path, image.file, image.width, image.height, len(image.annotations)) == ("outside.jpg", None, None, None, 1)
    assert [where for where, _ in parsed.problems] == ["labelmap.txt:1", "ImageSets/Main/train.txt", "Annotations/b.xml"]
