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


# Start-of-frame markers (every JPEG coding process); each carries the frame's height.
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE_MARKERS = {0x01, *range(0xD0, 0xD8)}


def _jpeg_height_offset(stream: BinaryIO) -> int | None:
    """Where the first frame's 2-byte height is, or None when the header is not plain enough to tell."""
    stream.seek(0)
    if stream.read(2) != b"\xff\xd8":
        return None
    while True:
        byte = stream.read(1)
        if byte != b"\xff":
            return None
        while byte == b"\xff":  # fill bytes may pad any marker
            byte = stream.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker in _STANDALONE_MARKERS:
            continue
        length = stream.read(2)
        if len(length) != 2 or marker in (0xD9, 0xDA):  # no frame header before the scan or the end
            return None
        if marker in _SOF_MARKERS:
            return stream.tell() + 1  # after the length, one byte of sample precision
        stream.seek(int.from_bytes(length, "big") - 2, io.SEEK_CUR)


class _Patched(io.RawIOBase):
    """A read-only view of a seekable stream with a few bytes at one offset replaced."""

    def __init__(self, stream: BinaryIO, offset: int, data: bytes):
        self._stream, self._offset, self._data = stream, offset, data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        return self._stream.seek(pos, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def readinto(self, buffer) -> int:
        start = self._stream.tell()
        count = self._stream.readinto(buffer)
        lo, hi = max(start, self._offset), min(start + count, self._offset + len(self._data))
        if lo < hi:
            buffer[lo - start : hi - start] = self._data[lo - self._offset : hi - self._offset]
        return count


def jpeg_top_rows(stream: BinaryIO, rows: int) -> BinaryIO | None:
    """The JPEG in stream as if it were only its top `rows` rows high, or None if that cannot be done.

    libjpeg decodes top to bottom, so a frame header that declares fewer rows makes Pillow allocate
    and decode only those: rows 0..rows-1 come out as in a full decode (keep a margin of an MCU row
    or two above the rows you use, where chroma upsampling looks at the row below), and libjpeg skips
    the rest of each scan's data as extraneous bytes before the next marker.
    """
    offset = _jpeg_height_offset(stream)
    stream.seek(0)
    if offset is None or not 0 < rows < 65536:
        return None
    return _Patched(stream, offset, rows.to_bytes(2, "big"))


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
