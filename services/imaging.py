"""Reading images safely and making thumbnails fast (Pillow only; no database, no Flask)."""

import io
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff", "GIF": "gif", "MPO": "jpeg"}
# EXIF orientations 5-8 swap width and height when applied.
TRANSPOSED = {5, 6, 7, 8}
EXIF_ORIENTATION = 0x0112


class ImageRejected(Exception):
    """A file that is not an image Loupe accepts; the message says why, for a person."""


@dataclass(frozen=True)
class ImageInfo:
    width: int  # as displayed, after EXIF orientation
    height: int
    format: str
    orientation: int


@dataclass(frozen=True)
class Processed:
    info: ImageInfo
    thumbnail: bytes
    phash: str


def open_image(stream: BinaryIO, max_pixels: int) -> PILImage.Image:
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel limit below with a clear message; Pillow's own bomb check
            # must not fire first with a warning or a differently worded error.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            saved, PILImage.MAX_IMAGE_PIXELS = PILImage.MAX_IMAGE_PIXELS, None
            try:
                image = PILImage.open(stream)
            finally:
                PILImage.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        raise ImageRejected("not an image, or an image format Loupe does not read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"corrupt image: {exc}") from None
    if image.format not in FORMATS:
        raise ImageRejected(f"unsupported format {image.format}; use JPEG, PNG, WebP, BMP, TIFF or GIF")
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRejected("image has no pixels")
    if width * height > max_pixels:
        raise ImageRejected(
            f"{width}x{height} is {width * height:,} pixels, over the limit of {max_pixels:,} "
            "(a decompression bomb guard)"
        )
    return image


def orientation_of(image: PILImage.Image, header_only: bool = False) -> int:
    if header_only and image.format == "PNG" and "exif" not in image.info:
        # Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after the
        # pixels; a header check must not (a 200 MP PNG is 600 MB decoded, in a web request).
        return 1
    try:
        value = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def inspect(stream: BinaryIO, max_pixels: int) -> ImageInfo:
    """Read only the header: format, size, orientation. Cheap enough for the upload request."""
    image = open_image(stream, max_pixels)
    orientation = orientation_of(image, header_only=True)
    width, height = image.size
    if orientation in TRANSPOSED:
        width, height = height, width
    return ImageInfo(width, height, FORMATS[image.format], orientation)


def fit(width: int, height: int, box: int) -> tuple[int, int]:
    """The aspect-fit size of width x height inside a box x box square."""
    scale = min(box / width, box / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _dhash(thumb: PILImage.Image) -> str:
    small = thumb.convert("L").resize((9, 8), PILImage.Resampling.BILINEAR)
    pixels = small.tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (pixels[row * 9 + col] > pixels[row * 9 + col + 1])
    return f"{bits:016x}"


def process(data: bytes, max_pixels: int, thumb_box: int) -> Processed:
    """Fully decode (which finds truncated or corrupt data), orient and thumbnail one image."""
    image = open_image(io.BytesIO(data), max_pixels)
    orientation = orientation_of(image)
    raw_w, raw_h = image.size
    fmt = FORMATS[image.format]
    try:
        if image.format in ("JPEG", "MPO"):
            # Ask draft() for the aspect-fit box, not a square: only then can libjpeg decode at
            # 1/2, 1/4 or 1/8 scale, which is most of the speed of an import.
            image.draft("RGB", fit(raw_w, raw_h, thumb_box))
        image.seek(0)  # first frame of a GIF or multi-page TIFF
        image.load()
        thumb = image if image.mode in ("RGB", "L") else image.convert("RGBA").convert("RGB")
        thumb.thumbnail((thumb_box, thumb_box), PILImage.Resampling.BILINEAR, reducing_gap=2.0)
        if orientation != 1:
            thumb = apply_orientation(thumb, orientation)
    except Exception as exc:  # Pillow raises many types for bad data; each is a per-file rejection
        raise ImageRejected(f"corrupt image: {exc}") from None
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=82, optimize=False)
    width, height = (raw_h, raw_w) if orientation in TRANSPOSED else (raw_w, raw_h)
    return Processed(ImageInfo(width, height, fmt, orientation), out.getvalue(), _dhash(thumb))


_TRANSPOSES = {
    2: [PILImage.Transpose.FLIP_LEFT_RIGHT],
    3: [PILImage.Transpose.ROTATE_180],
    4: [PILImage.Transpose.FLIP_TOP_BOTTOM],
    5: [PILImage.Transpose.TRANSPOSE],
    6: [PILImage.Transpose.ROTATE_270],
    7: [PILImage.Transpose.TRANSVERSE],
    8: [PILImage.Transpose.ROTATE_90],
}


def apply_orientation(image: PILImage.Image, orientation: int) -> PILImage.Image:
    for method in _TRANSPOSES.get(orientation, []):
        image = image.transpose(method)
    return image
