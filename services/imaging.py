"""Reading images safely and making thumbnails fast (Pillow only; no database, no Flask)."""

import io
import math
import struct
import threading
from collections import deque
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image as PILImage
from PIL import UnidentifiedImageError
from PIL import (  # noqa: F401 (imported to register the readers _read_header calls)
    BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin,
)

# Pillow allocates a large image in blocks (16 MB by default). glibc serves blocks that size from
# its per-thread heaps once one was freed, and keeps them: after a few huge decodes on different
# import threads, the worker holds each thread's largest. Blocks over glibc's 32 MB mmap ceiling
# always go back to the system when freed. Set once, on import, before any thread decodes.
PILImage.core.set_block_size(64 << 20)

FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff", "GIF": "gif", "MPO": "jpeg"}
_FORMAT_NAMES = "JPEG, PNG, WebP, BMP, TIFF or GIF"
# Pillow's names of the readers open_image tries (a JPEG reader also returns MPO files).
_READERS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
# EXIF orientations 5-8 swap width and height when applied.
TRANSPOSED = {5, 6, 7, 8}
EXIF_ORIENTATION = 0x0112
# Converted pixels held at once when an image of another mode is flattened to RGB or L.
TILE_PIXELS = 1 << 22
# Bytes a pixel takes once decoded, by Pillow mode (1-bit is a byte too); every other mode takes 4.
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# The support of the filters Loupe resamples with, in source pixels at scale 1 (as Pillow's).
_SUPPORT = {PILImage.Resampling.BILINEAR: 1.0, PILImage.Resampling.LANCZOS: 3.0}


class ImageRejected(Exception):
    """A file that is not an image Loupe accepts; the message says why, for a person."""


def bomb(pixels: int, limit: int) -> ImageRejected:
    return ImageRejected(f"decompression bomb: {pixels:,} pixels, limit {limit:,}")


@contextmanager
def decoding(pixels: int):
    """Pillow's errors while decoding an opened image of `pixels` (raw width x height) as the
    per-file rejection they are: its bomb guard as pillow_bomb, anything else as corrupt data
    (Pillow raises many types for bad data); an ImageRejected passes as it is."""
    try:
        yield
    except ImageRejected:
        raise
    except PILImage.DecompressionBombError:
        raise pillow_bomb(pixels) from None
    except Exception as exc:
        raise ImageRejected(f"corrupt image: {exc}") from None


def pillow_bomb(pixels: int) -> ImageRejected:
    """Pillow's own guard refused a step (opening a WebP, decoding a TIFF, over 2 x
    Image.MAX_IMAGE_PIXELS, a setting Loupe reads but never changes): the same per-file failure,
    with the limit that applied."""
    return bomb(pixels, 2 * (PILImage.MAX_IMAGE_PIXELS or 0))


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


def _webp_size(head: bytes) -> tuple[int, int] | None:
    """A WebP's canvas size from its first 30 bytes: Pillow's WebP reader allocates the canvas as it
    opens the file, after comparing with Image.MAX_IMAGE_PIXELS, so Loupe's limit must come first."""
    kind = head[12:16]
    if kind == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    if kind == b"VP8L" and head[20:21] == b"\x2f":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _read_header(stream: BinaryIO, max_pixels: int) -> PILImage.Image | None:
    """The image in stream, header read and nothing decoded, by the reader of Loupe's format it is in.

    PIL.Image.open would compare the size with Image.MAX_IMAGE_PIXELS, one setting for the whole
    process: changing it around the call races with other threads opening images, and leaving it
    lower than Loupe's limit refuses images Loupe accepts. Calling the format's reader directly
    checks nothing, so the caller compares the size with its own limit.
    """
    stream.seek(0)
    head = stream.read(30)
    for name in _READERS:
        reader, accept = PILImage.OPEN[name]
        if accept is not None and accept(head[:16]) is not True:
            continue
        size = _webp_size(head) if name == "WEBP" else None
        if size and size[0] * size[1] > max_pixels:
            raise bomb(size[0] * size[1], max_pixels)
        stream.seek(0)
        try:
            return reader(stream, "")
        except PILImage.DecompressionBombError:
            raise pillow_bomb(size[0] * size[1]) from None  # only the WebP reader checks, and size is known
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # as PIL.Image.open does: not this format after all
    return None


def open_image(stream: BinaryIO, max_pixels: int) -> PILImage.Image:
    """Open lazily (the header only) and refuse an image over max_pixels before anything decodes it."""
    try:
        image = _read_header(stream, max_pixels)
        if image is None:
            # Not one of Loupe's formats: let Pillow name the format, for a clearer message.
            image = PILImage.open(stream)
    except UnidentifiedImageError:
        raise ImageRejected("not an image, or an image format Loupe does not read") from None
    except PILImage.DecompressionBombError:  # only from the fallback, so not a format Loupe reads
        raise ImageRejected(f"unsupported format; use {_FORMAT_NAMES}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"corrupt image: {exc}") from None
    if image.format not in FORMATS:
        raise ImageRejected(f"unsupported format {image.format}; use {_FORMAT_NAMES}")
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRejected("image has no pixels")
    if width * height > max_pixels:
        raise bomb(width * height, max_pixels)
    return image


class DecodeBudget:
    """How many bytes of decoded pixels the threads sharing it hold at once.

    A decode waits until its bytes fit next to the ones being decoded; one larger than the whole
    budget waits for all the others and then decodes alone. Waiters go in arrival order, so a large
    file is not passed over forever by a stream of small ones.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.in_use = 0
        self.peak = 0  # the most held at once, for tests and benchmarks
        self._waiting: deque = deque()
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, size: int):
        turn = object()
        with self._changed:
            self._waiting.append(turn)
            while self._waiting[0] is not turn or (self.in_use and self.in_use + size > self.limit):
                self._changed.wait()
            self._waiting.popleft()
            self.in_use += size
            self.peak = max(self.peak, self.in_use)
            self._changed.notify_all()  # the next in line may fit as well
        try:
            yield
        finally:
            with self._changed:
                self.in_use -= size
                self._changed.notify_all()


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


def _flat(image: PILImage.Image) -> PILImage.Image:
    if image.mode in ("RGB", "L"):
        return image
    # 1-bit stays one byte a pixel as L; every other mode (palette with transparency, alpha, 16 bit)
    # goes through RGBA, as Pillow recommends, and drops the alpha.
    return image.convert("L") if image.mode == "1" else image.convert("RGBA").convert("RGB")


def _flattened(image: PILImage.Image, box: tuple[int, int, int, int], factor: tuple[int, int]) -> PILImage.Image:
    """The box of image in RGB or L and reduced by factor, converted a tile at a time.

    A 196 MP 1-bit or palette image converted whole would be a 784 MB RGBA copy and then a 784 MB
    RGB one; here at most TILE_PIXELS are converted at once. Tiles are whole factor x factor blocks
    from the box's corner, so each reduced tile holds exactly the pixels reducing the whole gives.
    """
    x0, y0, x1, y1 = box
    fx, fy = factor
    # Pillow checks each crop against its own limit too (read, never changed).
    tile_pixels = min(TILE_PIXELS, PILImage.MAX_IMAGE_PIXELS or TILE_PIXELS)
    blocks = max(1, math.isqrt(tile_pixels // (fx * fy)))
    tile_w, tile_h = blocks * fx, blocks * fy
    out = None
    for top in range(y0, y1, tile_h):
        for left in range(x0, x1, tile_w):
            tile = _flat(image.crop((left, top, min(x1, left + tile_w), min(y1, top + tile_h))))
            if factor != (1, 1):
                tile = tile.reduce(factor)
            if out is None:
                out = PILImage.new(tile.mode, (-(-(x1 - x0) // fx), -(-(y1 - y0) // fy)))
            out.paste(tile, ((left - x0) // fx, (top - y0) // fy))
    return out


def resample(image: PILImage.Image, size: tuple[int, int], box: tuple[float, float, float, float],
             method: PILImage.Resampling, reducing_gap: float | None = None) -> PILImage.Image:
    """The box (source pixels, may be fractional) of a loaded image resized to size, in RGB or L.

    Never a full-resolution converted copy, nor a crop of more than a tile: Pillow checks every
    crop against Image.MAX_IMAGE_PIXELS, which is not Loupe's limit. With reducing_gap, as in
    Image.resize: first an integer reduce (a box average) to within reducing_gap times the size.
    """
    left, top, right, bottom = box
    if size == (right - left, bottom - top) and all(float(v).is_integer() for v in box):
        return _flattened(image, tuple(int(v) for v in box), (1, 1))  # a plain crop
    if image.mode in ("RGB", "L"):
        return image.resize(size, method, box=box, reducing_gap=reducing_gap)
    scale_x, scale_y = (right - left) / size[0], (bottom - top) / size[1]
    factor = (1, 1)
    if reducing_gap is not None:
        factor = (int(scale_x / reducing_gap) or 1, int(scale_y / reducing_gap) or 1)
    # The source pixels the filter reads, as Image.resize's reduce step takes them.
    support = _SUPPORT[method] - 0.5
    source = (
        max(0, int(left - support * scale_x)), max(0, int(top - support * scale_y)),
        min(image.width, math.ceil(right + support * scale_x)), min(image.height, math.ceil(bottom + support * scale_y)),
    )
    flat = _flattened(image, source, factor)
    fx, fy = factor
    inner = ((left - source[0]) / fx, (top - source[1]) / fy, (right - source[0]) / fx, (bottom - source[1]) / fy)
    return flat.resize(size, method, box=inner)


def _thumbnail_size(width: int, height: int, box: int) -> tuple[int, int]:
    """The size Image.thumbnail((box, box)) makes: the aspect ratio kept as closely as whole pixels allow."""
    if width <= box and height <= box:
        return width, height
    aspect = width / height
    if aspect <= 1:
        return max(min(math.floor(box * aspect), math.ceil(box * aspect), key=lambda n: abs(aspect - n / box)), 1), box
    return box, max(min(math.floor(box / aspect), math.ceil(box / aspect), key=lambda n: 0 if n == 0 else abs(aspect - box / n)), 1)


def decoded_bytes(image: PILImage.Image) -> int:
    """The memory Pillow allocates to decode image at its current (possibly drafted) size."""
    return image.width * image.height * _BYTES_PER_PIXEL.get(image.mode, 4)


def process(data: bytes, max_pixels: int, thumb_box: int, budget: DecodeBudget | None = None) -> Processed:
    """Fully decode (which finds truncated or corrupt data), orient and thumbnail one image.

    With a budget, the decode waits for its bytes to fit in it (see DecodeBudget). Whatever the
    mode, no full-resolution converted copy is made: only tiles, and the thumbnail.
    """
    image = open_image(io.BytesIO(data), max_pixels)
    raw_w, raw_h = image.size
    fmt = FORMATS[image.format]
    with decoding(raw_w * raw_h):
        if image.format in ("JPEG", "MPO"):
            # Ask draft() for the aspect-fit box, not a square: only then can libjpeg decode at
            # 1/2, 1/4 or 1/8 scale, which is most of the speed of an import.
            image.draft("RGB", fit(raw_w, raw_h, thumb_box))
        with budget.hold(decoded_bytes(image)) if budget else nullcontext():
            orientation = orientation_of(image)  # a PNG's eXIf chunk may follow the pixels: this may decode
            image.seek(0)  # first frame of a GIF or multi-page TIFF
            image.load()
            size = _thumbnail_size(image.width, image.height, thumb_box)
            whole = (0, 0, image.width, image.height)
            thumb = resample(image, size, whole, PILImage.Resampling.BILINEAR, reducing_gap=2.0)
            image.close()  # the decoded pixels go before the budget is given back
        if orientation != 1:
            thumb = apply_orientation(thumb, orientation)
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
