"""Crops of one label's annotations as WebP: the API's pages of data URIs and the crops ZIP export.

A crop is the annotation's bounding box (boxes, polygons, circles), in whole pixels of the
oriented image (the pixels annotations use), clamped to the image and at least 1 x 1. An image's
crops are numbered from 0 in annotation order among that label's croppable annotations, so the
API's `index` and the ZIP's file names agree. Each image is decoded once for all its crops.
"""

import base64
import io
import math
from dataclasses import dataclass
from typing import BinaryIO, Iterable

from PIL import Image as PILImage
from sqlalchemy import func, select

from core.extensions import db
from core.storage import get_storage
from models import Annotation, Image, Label
from services import imaging, regions
from services.shapes import AREA_SHAPES, bbox

# The shapes that enclose an area: a line or points has no region to cut out.
WEBP_QUALITY = 90
# libwebp's largest side; a larger crop is scaled down to fit, keeping its aspect ratio.
WEBP_MAX_SIDE = 16383
DATA_URI_PREFIX = "data:image/webp;base64,"
PAGE_DEFAULT, PAGE_MAX = 20, 100


@dataclass(frozen=True)
class CropBox:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def crop_box(shape: str, geometry: dict, width: int, height: int) -> CropBox | None:
    """The whole-pixel box a crop of the shape covers on a width x height image; None if it encloses nothing."""
    if shape not in AREA_SHAPES:
        return None
    x, y, w, h = bbox(shape, geometry)
    left = min(max(math.floor(x), 0), width - 1)
    top = min(max(math.floor(y), 0), height - 1)
    return CropBox(left, top, min(max(math.ceil(x + w), left + 1), width), min(max(math.ceil(y + h), top + 1), height))


def numbered(annotations: Iterable, label_id: int, width: int, height: int) -> list[tuple[int, object, CropBox]]:
    """(index, annotation, box) for the label's croppable annotations of one image, in the order given
    (annotation order): export records and database rows alike (`label_id`, `shape`, `geometry`)."""
    crops = []
    for annotation in annotations:
        if annotation.label_id != label_id:
            continue
        box = crop_box(annotation.shape, annotation.geometry or {}, width, height)
        if box is not None:
            crops.append((len(crops), annotation, box))
    return crops


def _fitted(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, WEBP_MAX_SIDE / width, WEBP_MAX_SIDE / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def render_crops(stream: BinaryIO, boxes: list[CropBox], max_pixels: int = regions.DEFAULT_MAX_PIXELS) -> list[bytes]:
    """WebP bytes of each box of the image in stream, decoding it once (with the pixel limit).

    Boxes are in oriented pixels; each is cut from the stored pixels and then oriented, so the
    decoded image is never rotated whole. Raises imaging.ImageRejected if the image cannot be read.
    """
    if not boxes:
        return []
    image = imaging.open_image(stream, max_pixels)
    raw_w, raw_h = image.size
    with imaging.decoding(raw_w * raw_h):
        orientation = imaging.orientation_of(image)
        image.seek(0)  # the first frame of a GIF or multi-page TIFF, as the import read it
        image.load()
        crops = []
        for box in boxes:
            source = regions.raw_box(orientation, raw_w, raw_h, box.left, box.top, box.width, box.height)
            size = _fitted(box.width, box.height)
            if orientation in imaging.TRANSPOSED:
                size = size[::-1]
            crop = imaging.resample(image, size, source, PILImage.Resampling.LANCZOS)
            out = io.BytesIO()
            imaging.apply_orientation(crop, orientation).save(out, "WEBP", quality=WEBP_QUALITY)
            crops.append(out.getvalue())
        image.close()
    return crops


def data_uri(webp: bytes) -> str:
    return DATA_URI_PREFIX + base64.b64encode(webp).decode("ascii")


# ---- the API's pages -----------------------------------------------------------------------


def _croppable(label: Label):
    return (Annotation.label_id == label.id, Annotation.shape.in_(AREA_SHAPES))


def count_crops(label: Label) -> int:
    return db.session.scalar(select(func.count()).select_from(Annotation).where(*_croppable(label)))


def crop_page(label: Label, after: int = 0, limit: int = PAGE_DEFAULT, max_pixels: int = regions.DEFAULT_MAX_PIXELS) -> tuple[list[dict], int | None]:
    """One page of the label's crops in annotation id order, and the cursor of the next page, if any.

    Each item: the annotation's id, its image's id, the crop as a WebP data URI (None when the stored
    image is missing or cannot be decoded) and its index among its image's crops of the label.
    """
    page = db.session.execute(
        select(Annotation.id, Annotation.image_id).where(*_croppable(label), Annotation.id > after).order_by(Annotation.id).limit(limit + 1)
    ).all()
    next_cursor = page[limit - 1].id if len(page) > limit else None
    page = page[:limit]
    wanted = {row.id for row in page}
    image_ids = sorted({row.image_id for row in page})
    images = {row.id: row for row in db.session.execute(
        select(Image.id, Image.storage_key, Image.width, Image.height).where(Image.id.in_(image_ids))
    )}
    # Every croppable annotation of the label on these images, so an index counts the earlier ones
    # of the same image even when they fall on an earlier page.
    by_image: dict[int, list] = {}
    for row in db.session.execute(
        select(Annotation.id, Annotation.image_id, Annotation.label_id, Annotation.shape, Annotation.geometry)
        .where(*_croppable(label), Annotation.image_id.in_(image_ids)).order_by(Annotation.id)
    ):
        by_image.setdefault(row.image_id, []).append(row)
    items: dict[int, dict] = {}
    for image_id in image_ids:
        image = images[image_id]
        crops = [c for c in numbered(by_image.get(image_id, []), label.id, image.width, image.height) if c[1].id in wanted]
        try:
            with get_storage().open(image.storage_key) as stream:
                uris = [data_uri(webp) for webp in render_crops(stream, [box for _, _, box in crops], max_pixels)]
        except (FileNotFoundError, imaging.ImageRejected):
            uris = [None] * len(crops)
        for (index, annotation, _), uri in zip(crops, uris):
            items[annotation.id] = {"id": annotation.id, "image_id": image_id, "crop_uri": uri, "index": index}
    return [items[row.id] for row in page], next_cursor
