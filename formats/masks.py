"""Masks rasterized from an image's regions (the annotations that enclose an area: box, polygon,
circle), one image at a time, for the formats that ship PNG masks (ZIP folders, Pascal VOC).

Two masks per image, both the image's size:
    class mask   each pixel the 1-based index of its region's label in the export's label list
                 (0: background), so the legend is the label list itself;
    object mask  each pixel the 1-based number of its region among the image's regions, in the
                 order the image lists them (0: background).
Later regions cover earlier ones where they overlap, as they do on the canvas.

A pixel belongs to a region when its centre lies inside the outline (even-odd rule, edges
half-open), so two regions sharing an edge never both take the pixels along it and a box of
integer corners covers exactly width x height pixels. Pillow's ImageDraw.polygon rounds the
vertices to whole pixels and takes both ends, which grows every box by a pixel each way.
"""

from __future__ import annotations

import io
import math

from PIL import Image as PILImage

from formats.base import ExportAnnotation, ExportImage, ExportSource
from services.shapes import AREA_SHAPES, outline


def regions(image: ExportImage) -> list[ExportAnnotation]:
    """The image's annotations that a mask shows, in the image's order."""
    return [a for a in image.annotations if a.shape in AREA_SHAPES]


def label_values(source: ExportSource) -> dict[int, int]:
    """Each label id's value in a class mask: its 1-based place in the export's label list."""
    return {label.id: i for i, label in enumerate(source.labels, start=1)}


def draw(image: ExportImage, shown: list[ExportAnnotation], values: dict[int, int]) -> tuple[PILImage.Image, PILImage.Image]:
    """The image's class mask and object mask, each region's pixels found once for both."""
    classes = _blank(image, max(values.values(), default=0))
    objects = _blank(image, len(shown))
    for number, annotation in enumerate(shown, start=1):
        coverage = _coverage(outline(annotation.shape, annotation.geometry), image.width, image.height)
        if coverage is not None:
            box, stencil = coverage
            classes.paste(values[annotation.label_id], box, stencil)
            objects.paste(number, box, stencil)
    return _finish(classes), _finish(objects)


def png_bytes(mask: PILImage.Image) -> bytes:
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()


def voc_colormap(n: int = 256) -> list[tuple[int, int, int]]:
    """The Pascal VOC palette: index i's colour from the bits of i, spread over the high bits."""
    colors = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colors.append((r, g, b))
    return colors


VOC_PALETTE = [channel for color in voc_colormap() for channel in color]


def voc_png(mask: PILImage.Image) -> bytes:
    """An 8-bit mask as VOC stores it: a palette PNG whose index i has VOC colour i."""
    paletted = mask.copy()
    paletted.putpalette(VOC_PALETTE)
    return png_bytes(paletted)


def _blank(image: ExportImage, largest: int) -> PILImage.Image:
    # 8 bits while every value fits, else 16-bit grayscale (PNG has no wider gray); drawn in "I"
    # because Pillow pastes ints into "I" but not into "I;16".
    return PILImage.new("L" if largest <= 255 else "I", (image.width, image.height), 0)


def _finish(mask: PILImage.Image) -> PILImage.Image:
    return mask if mask.mode == "L" else mask.convert("I;16")


def _coverage(points: list[tuple[float, float]], width: int, height: int) -> tuple[tuple[int, int, int, int], PILImage.Image] | None:
    """The pixels whose centre lies inside the polygon (scanline, even-odd), as a stencil over the
    box they fill; None when no pixel centre is inside."""
    crossings: dict[int, list[float]] = {}
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        if y0 == y1:
            continue
        # The rows whose centre (row + 0.5) the edge spans, half-open: [min y, max y).
        low, high = min(y0, y1), max(y0, y1)
        slope = (x1 - x0) / (y1 - y0)
        for row in range(max(0, math.ceil(low - 0.5)), min(height, math.ceil(high - 0.5))):
            crossings.setdefault(row, []).append(x0 + (row + 0.5 - y0) * slope)
    spans = []
    for row, xs in crossings.items():
        xs.sort()
        for start, end in zip(xs[::2], xs[1::2]):
            first, last = max(0, math.ceil(start - 0.5)), min(width, math.ceil(end - 0.5))
            if first < last:
                spans.append((row, first, last))
    if not spans:
        return None
    left, right = min(s[1] for s in spans), max(s[2] for s in spans)
    top, bottom = min(s[0] for s in spans), max(s[0] for s in spans) + 1
    stride = right - left
    stencil = bytearray(stride * (bottom - top))
    for row, first, last in spans:
        offset = (row - top) * stride - left
        stencil[offset + first:offset + last] = b"\xff" * (last - first)
    return (left, top, right, bottom), PILImage.frombytes("L", (stride, bottom - top), bytes(stencil))
