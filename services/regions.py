"""Regions and previews of large images: crop and downscale on the server, cached in storage.

Coordinates are display pixels (after EXIF orientation), the same pixels annotations use. The
result is a JPEG of at most MAX_SIDE x MAX_SIDE, stored under a deterministic derived key, so a
repeat request is a storage read, and the key doubles as a strong ETag.

Plain Python (Pillow only); storage defaults to the app's, but callers and tests may pass their own.
"""

import io
import math
import numbers
from dataclasses import dataclass

from PIL import Image as PILImage

from core.errors import Invalid, NotFound
from services import imaging

MAX_SIDE = 2048  # the largest region or preview side, in output pixels
PREVIEW_SIDE = 2048  # the preview's longest side
QUALITY = 85
DEFAULT_MAX_PIXELS = 200_000_000
# Rows decoded below a region's bottom: libjpeg's chroma upsampling and progressive block smoothing
# look one MCU row (at most 32 pixels) further down, and the rows used must come out as in a full decode.
JPEG_ROW_MARGIN = 64
# A large downscale first averages blocks down to within this factor of the output (Image.resize's
# reducing_gap): a preview of a 196 MP palette image converts tiles and keeps only the averaged copy.
REDUCING_GAP = 2.0


@dataclass(frozen=True)
class Box:
    """A validated request: display-pixel rectangle and the output size it downscales to."""

    x: int
    y: int
    width: int
    height: int
    out_width: int
    out_height: int


def _integer(name: str, value) -> int:
    if isinstance(value, bool):
        raise Invalid(f"{name} must be a whole number of pixels", details={"field": name})
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise Invalid(f"{name} must be a whole number of pixels, not {value!r}", details={"field": name})
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        # 20 characters hold any 64-bit number; int() raises ValueError past 4,300 digits.
        if text.lstrip("+-").isdigit() and text.isascii() and len(text) <= 20:
            return int(text)
        raise Invalid(f"{name} must be a whole number of pixels, not {value[:24]!r}", details={"field": name})
    raise Invalid(f"{name} is missing or not a number", details={"field": name})


def _scale(value) -> float:
    if isinstance(value, bool) or value is None:
        raise Invalid("scale is missing or not a number", details={"field": "scale"})
    try:
        scale = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise Invalid(f"scale must be a number between 0 and 1, not {value!r}", details={"field": "scale"}) from None
    if not math.isfinite(scale) or not 0 < scale <= 1:
        raise Invalid(f"scale must be greater than 0 and at most 1, not {value!r}", details={"field": "scale"})
    return scale


def validate(image, x, y, width, height, scale) -> Box:
    """Check every parameter against the image (display size); each failure is an Invalid for a person."""
    x, y = _integer("x", x), _integer("y", y)
    width, height = _integer("width", width), _integer("height", height)
    scale = _scale(scale)
    if width < 1 or height < 1:
        raise Invalid("width and height must be at least 1 pixel", details={"field": "width" if width < 1 else "height"})
    if x < 0 or y < 0:
        raise Invalid("x and y must not be negative", details={"field": "x" if x < 0 else "y"})
    if x + width > image.width or y + height > image.height:
        raise Invalid(
            f"The region {x},{y} {width}x{height} is not inside the {image.width}x{image.height} image",
            details={"field": "width" if x + width > image.width else "height"},
        )
    out_width, out_height = max(1, round(width * scale)), max(1, round(height * scale))
    if out_width > MAX_SIDE or out_height > MAX_SIDE:
        raise Invalid(
            f"A region is at most {MAX_SIDE}x{MAX_SIDE} pixels; {width}x{height} at scale {scale:g} is "
            f"{out_width}x{out_height}: ask for a smaller area or a smaller scale",
            details={"field": "scale"},
        )
    return Box(x, y, width, height, out_width, out_height)


def region_key(image, box: Box) -> str:
    """The derived storage key: the same request always maps to the same object."""
    name = f"{box.x}-{box.y}-{box.width}-{box.height}-{box.out_width}x{box.out_height}.jpg"
    return regions_prefix_for(image.storage_key) + name


def regions_prefix_for(storage_key: str) -> str:
    """The folder holding every cached region of one stored file, deleted with the file."""
    return f"regions/{storage_key}/"


def preview_key(image) -> str:
    return preview_key_for(image.storage_key)


def preview_key_for(storage_key: str) -> str:
    return f"previews/{storage_key}-{PREVIEW_SIDE}.jpg"


def preview_box(image) -> Box:
    width, height = imaging.fit(image.width, image.height, PREVIEW_SIDE)
    return Box(0, 0, image.width, image.height, width, height)


def raw_box(orientation: int, raw_w: int, raw_h: int, x: float, y: float, w: float, h: float) -> tuple:
    """A display rectangle as (left, top, right, bottom) in the stored (un-oriented) pixels."""
    if orientation == 2:
        x = raw_w - x - w
    elif orientation == 3:
        x, y = raw_w - x - w, raw_h - y - h
    elif orientation == 4:
        y = raw_h - y - h
    elif orientation == 5:
        x, y, w, h = y, x, h, w
    elif orientation == 6:
        x, y, w, h = y, raw_h - x - w, h, w
    elif orientation == 7:
        x, y, w, h = raw_w - y - h, raw_h - x - w, h, w
    elif orientation == 8:
        x, y, w, h = raw_w - y - h, x, h, w
    return x, y, x + w, y + h


def render(data_stream, box: Box, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """Decode only as much as needed, crop, downscale, orient, encode; never changes Pillow's settings.

    A JPEG decodes at the smallest DCT scale (draft()) that keeps the output sharp, and only down to
    the region's bottom row: a 1024x1024 tile at the top of a 12000x9000 photo decodes 12000x1088
    pixels (39 MB), not 324 MB. libjpeg cannot skip the rows above, so a tile at the bottom still
    decodes (and holds) the full height.
    """
    image = imaging.open_image(data_stream, max_pixels)
    raw_w, raw_h = image.size
    with imaging.decoding(raw_w * raw_h):
        orientation = imaging.orientation_of(image)
        transposed = orientation in imaging.TRANSPOSED
        scale_x = box.out_width / box.width
        scale_y = box.out_height / box.height
        # The output size in stored pixels (before orientation).
        out_size = (box.out_height, box.out_width) if transposed else (box.out_width, box.out_height)
        raw_scale = (scale_y, scale_x) if transposed else (scale_x, scale_y)
        left, top, right, bottom = raw_box(orientation, raw_w, raw_h, box.x, box.y, box.width, box.height)
        fx = fy = 1.0
        if image.format in ("JPEG", "MPO"):
            rows = min(raw_h, math.ceil(bottom) + JPEG_ROW_MARGIN)
            top_rows = imaging.jpeg_top_rows(data_stream, rows) if rows < raw_h else None
            if top_rows is not None:
                image = imaging.open_image(top_rows, max_pixels)
            # The smallest 1/1, 1/2, 1/4 or 1/8 decode that still has at least the needed resolution.
            drafted = image.draft(
                "RGB", (max(1, math.ceil(raw_w * raw_scale[0])), max(1, math.ceil(image.height * raw_scale[1])))
            )
            if drafted is not None:
                # Exactly 1/n: each decoded pixel covers an n x n block of stored pixels.
                fx = fy = drafted[1][2] / raw_w
        image.seek(0)
        image.load()
        source = (left * fx, top * fy, right * fx, bottom * fy)
        out = imaging.resample(image, out_size, source, PILImage.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
        out = imaging.apply_orientation(out, orientation)
    buffer = io.BytesIO()
    out.save(buffer, "JPEG", quality=QUALITY)
    return buffer.getvalue()


def _cached(image, key: str, box: Box, storage, max_pixels: int) -> str:
    storage = _storage(storage)
    if not storage.exists(key):
        try:
            with storage.open(image.storage_key) as stream:
                data = render(stream, box, max_pixels)
        except FileNotFoundError:
            raise NotFound("The image's file is missing from storage") from None
        except imaging.ImageRejected as exc:
            raise Invalid(f"The stored image cannot be decoded: {exc}") from None
        storage.put_bytes(key, data)
    return key


def ensure_region(image, x, y, width, height, scale, *, storage=None, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """Validate, render once, and return the storage key of the region's JPEG."""
    box = validate(image, x, y, width, height, scale)
    return _cached(image, region_key(image, box), box, storage, max_pixels)


def ensure_preview(image, *, storage=None, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """The whole image downscaled to PREVIEW_SIDE on its longest side (never upscaled), cached."""
    return _cached(image, preview_key(image), preview_box(image), storage, max_pixels)


def region(image, x, y, width, height, scale, *, storage=None, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """JPEG bytes of the display-pixel rectangle of the original, downscaled by scale (0 < scale <= 1)."""
    key = ensure_region(image, x, y, width, height, scale, storage=storage, max_pixels=max_pixels)
    return _storage(storage).read(key)


def preview(image, *, storage=None, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    key = ensure_preview(image, storage=storage, max_pixels=max_pixels)
    return _storage(storage).read(key)


def _storage(storage):
    if storage is not None:
        return storage
    from core.storage import get_storage

    return get_storage()
