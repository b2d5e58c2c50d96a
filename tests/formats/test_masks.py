"""Masks rasterized from regions: pixels against the shapes, values, overlap order, PNG modes."""

import io

import pytest
from PIL import Image as PILImage

from formats import masks
from services.shapes import area
from tests.formats.memory_source import MemorySource, box, circle, labels, polygon, tag


def pixels(mask) -> list[int]:
    return list(mask.get_flattened_data())


def reopened(png: bytes) -> PILImage.Image:
    return PILImage.open(io.BytesIO(png))


def test_a_box_of_whole_pixels_covers_exactly_its_pixels():
    cat, = labels("cat")
    source = MemorySource(labels=(cat,))
    image = source.add("a.jpg", box(cat, 2, 3, 5, 4), size=(16, 12))
    mask = masks.draw(image, masks.regions(image), masks.label_values(source))[0]
    assert mask.mode == "L" and mask.size == (16, 12)
    assert pixels(mask).count(1) == 20
    assert mask.getbbox() == (2, 3, 7, 7)  # columns 2-6, rows 3-6


def test_polygon_and_circle_pixels_match_the_shapes():
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog))
    triangle = polygon(cat, (1.5, 1.2), (30.7, 4.1), (10.2, 22.8))
    round_ = circle(dog, 30, 17, 6.5)
    image = source.add("a.jpg", triangle, round_, tag(cat), size=(40, 24))
    shown = masks.regions(image)
    assert shown == [triangle, round_]  # the tag encloses nothing
    mask = masks.draw(image, shown, masks.label_values(source))[0]
    values = pixels(mask)
    for shape, value in ((triangle, 1), (round_, 2)):
        expected = area(shape.shape, shape.geometry)
        assert abs(values.count(value) - expected) <= 0.1 * expected, (shape.shape, values.count(value), expected)
    assert mask.getpixel((12, 9)) == 1  # inside the triangle
    assert mask.getpixel((30, 17)) == 2  # the circle's centre
    assert mask.getpixel((2, 20)) == 0 and mask.getpixel((39, 0)) == 0


def test_later_regions_cover_earlier_ones_and_objects_are_numbered_in_order():
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog))
    image = source.add("a.jpg", box(cat, 0, 0, 8, 8), box(dog, 4, 0, 8, 8), box(cat, 12, 0, 4, 4), size=(16, 12))
    shown = masks.regions(image)
    classes, objects = masks.draw(image, shown, masks.label_values(source))
    assert [classes.getpixel((x, 1)) for x in (1, 5, 10, 13)] == [1, 2, 2, 1]
    assert [objects.getpixel((x, 1)) for x in (1, 5, 10, 13)] == [1, 2, 2, 3]
    assert pixels(objects).count(1) == 4 * 8 and pixels(objects).count(2) == 64 and pixels(objects).count(3) == 16


def test_regions_sharing_an_edge_share_no_pixel():
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog))
    left, right = polygon(cat, (0, 0), (6.5, 0), (6.5, 12), (0, 12)), polygon(dog, (6.5, 0), (16, 0), (16, 12), (6.5, 12))
    image = source.add("a.jpg", left, right, size=(16, 12))
    mask = masks.draw(image, masks.regions(image), masks.label_values(source))[1]
    assert pixels(mask).count(0) == 0
    assert pixels(mask).count(1) == 6 * 12 and pixels(mask).count(2) == 10 * 12


def test_more_than_255_labels_give_a_16_bit_mask():
    many = labels(*(f"l{i}" for i in range(300)))
    source = MemorySource(labels=many)
    image = source.add("a.jpg", box(many[-1], 1, 1, 2, 2), size=(16, 12))
    mask = reopened(masks.png_bytes(masks.draw(image, masks.regions(image), masks.label_values(source))[0]))
    assert mask.mode == "I;16" and mask.getpixel((1, 1)) == 300 and mask.getpixel((0, 0)) == 0


def test_voc_png_is_a_palette_image_in_the_voc_colormap():
    cat, dog = labels("cat", "dog")
    source = MemorySource(labels=(cat, dog))
    image = source.add("a.jpg", box(dog, 0, 0, 4, 4), size=(16, 12))
    mask = reopened(masks.voc_png(masks.draw(image, masks.regions(image), masks.label_values(source))[0]))
    assert mask.mode == "P" and mask.getpixel((0, 0)) == 2 and mask.getpixel((8, 8)) == 0
    palette = mask.getpalette()
    assert palette[:12] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0]
    assert masks.voc_colormap()[255] == (224, 224, 192)


@pytest.mark.parametrize("corner, size", [((0, 0), (16, 12)), ((-0.5, -0.5), (17, 13))])
def test_a_region_covering_the_image_stays_inside_it(corner, size):
    cat, = labels("cat")
    source = MemorySource(labels=(cat,))
    image = source.add("a.jpg", box(cat, *corner, *size))
    assert pixels(masks.draw(image, masks.regions(image), masks.label_values(source))[1]) == [1] * (16 * 12)
