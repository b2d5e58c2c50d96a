"""services/imaging.py: the pixel limit is Loupe's own and per call, decoding shares a memory budget,
and thumbnails of every mode are made without a full-resolution converted copy."""

import io
import struct
import sys
import threading
import time
import zlib

import pytest
from PIL import Image as PILImage
from PIL import ImageChops

from services import imaging


def _small(fmt: str, **save) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (16, 16), (200, 30, 30)).save(out, fmt, **save)
    return out.getvalue()


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _gif(width: int, height: int) -> bytes:
    data = bytearray(_small("GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    return bytes(data)


def _bmp(width: int, height: int) -> bytes:
    data = bytearray(_small("BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def _jpeg(width: int, height: int) -> bytes:
    data = bytearray(_small("JPEG"))
    at = data.index(b"\xff\xc0")  # baseline start of frame: length, precision, height, width
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _webp(width: int, height: int) -> bytes:
    data = bytearray(_small("WEBP", lossless=True))
    at = data.index(b"VP8L") + 9  # after the chunk size and the 0x2f signature: 14 bits each, minus one
    rest = struct.unpack("<I", data[at : at + 4])[0] & ~((1 << 28) - 1)
    data[at : at + 4] = struct.pack("<I", rest | (width - 1) | ((height - 1) << 14))
    return bytes(data)


def _tiff(width: int, height: int) -> bytes:
    """A 1-bit baseline TIFF whose one strip is a single byte."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 1), (259, 3, 1), (262, 3, 1), (273, 4, 0), (277, 3, 1),
            (278, 4, height), (279, 4, 1)]  # (tag, type, value): sizes, 1 bit, no compression, one strip
    data_at = 8 + 2 + 12 * len(tags) + 4
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, k, 1, data_at if t == 273 else v) for t, k, v in tags)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00" + b"\x00"


# Files of a few hundred bytes whose headers declare width x height pixels (decoding them would
# allocate it all), in every format Loupe reads.
DECLARING = {"PNG": _png, "GIF": _gif, "BMP": _bmp, "JPEG": _jpeg, "WEBP": _webp, "TIFF": _tiff}


def declaring(fmt: str, width: int, height: int) -> bytes:
    return DECLARING[fmt](width, height)


def one_bit_png(width: int, height: int) -> bytes:
    """A real 1-bit PNG (a scanned page): a few KB on disk, width x height bytes once decoded."""
    image = PILImage.new("1", (width, height), 1)
    image.paste(0, (width // 8, height // 8, width // 2, height // 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def bomb_message(pixels: int, limit: int) -> str:
    return f"decompression bomb: {pixels:,} pixels, limit {limit:,}"


@pytest.mark.parametrize("fmt", sorted(DECLARING))
@pytest.mark.parametrize("size, limit", [((16000, 12000), 100_000_000), ((15000, 9000), 134_999_999), ((4000, 3001), 12_000_000)])
def test_an_image_over_the_limit_is_refused_from_its_header_with_the_size_and_the_limit(fmt, size, limit):
    data = declaring(fmt, *size)
    assert len(data) < 1000
    pixels = size[0] * size[1]
    for call in (lambda: imaging.inspect(io.BytesIO(data), limit), lambda: imaging.process(data, limit, 256)):
        with pytest.raises(imaging.ImageRejected) as caught:
            call()
        assert str(caught.value) == bomb_message(pixels, limit)
    # At the limit the header passes, except where Pillow's reader allocates on open and asks its
    # own guard first (WebP over 2 x Image.MAX_IMAGE_PIXELS): the same message with that limit.
    pillow_limit = 2 * PILImage.MAX_IMAGE_PIXELS
    if fmt == "WEBP" and pixels > pillow_limit:
        with pytest.raises(imaging.ImageRejected, match=f"^{bomb_message(pixels, pillow_limit)}$"):
            imaging.inspect(io.BytesIO(data), pixels)
    else:
        assert imaging.inspect(io.BytesIO(data), pixels).width == size[0]


def test_threads_opening_large_images_at_once_never_trip_over_each_other():
    """Pillow's own limit is one setting for the process; changing it around each open raced."""
    files = [declaring(fmt, 20000 + i, 20000) for i, fmt in enumerate(["PNG", "GIF", "TIFF", "BMP"] * 2)]
    failures = []

    def inspect_many(data: bytes) -> None:
        for _ in range(300):
            try:
                imaging.inspect(io.BytesIO(data), 10**9)
            except Exception as exc:  # any failure here is the bug
                failures.append(repr(exc))

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, so a race shows at once
    try:
        threads = [threading.Thread(target=inspect_many, args=(data,)) for data in files]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert failures == []


@pytest.mark.parametrize("pillow_limit", [1000, 5000])
def test_pillows_process_wide_limit_is_never_changed_and_does_not_refuse_what_loupe_accepts(monkeypatch, pillow_limit):
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", pillow_limit)
    for fmt, size in [("PNG", (120, 100)), ("JPEG", (640, 480)), ("BMP", (200, 150)), ("GIF", (150, 150))]:
        out = io.BytesIO()
        PILImage.effect_noise(size, 50).convert("RGB").save(out, fmt)
        processed = imaging.process(out.getvalue(), 10**6, 64)
        assert (processed.info.width, processed.info.height) == size, fmt
        assert PILImage.MAX_IMAGE_PIXELS == pillow_limit
    # Pillow's WebP reader (on open) and TIFF decoder ask its guard themselves: a per-file failure
    # saying which limit applied.
    for fmt in ("WEBP", "TIFF"):
        out = io.BytesIO()
        PILImage.new("L", (120, 100)).save(out, fmt)
        with pytest.raises(imaging.ImageRejected) as caught:
            imaging.process(out.getvalue(), 10**6, 64)
        assert str(caught.value) == bomb_message(12_000, 2 * pillow_limit), fmt
        assert PILImage.MAX_IMAGE_PIXELS == pillow_limit


def _as_before(image: PILImage.Image, box: int) -> PILImage.Image:
    """The thumbnail as it was made before: the whole image converted, then Image.thumbnail."""
    whole = image if image.mode in ("RGB", "L") else image.convert("RGBA").convert("RGB")
    whole.thumbnail((box, box), PILImage.Resampling.BILINEAR, reducing_gap=2.0)
    return whole


@pytest.mark.parametrize("mode", ["1", "P", "RGBA", "LA", "I;16", "L", "RGB"])
@pytest.mark.parametrize("size", [(3000, 2000), (700, 5000), (257, 300), (90, 100), (1999, 1501)])
def test_thumbnails_converted_a_tile_at_a_time_equal_a_whole_image_conversion(monkeypatch, mode, size):
    monkeypatch.setattr(imaging, "TILE_PIXELS", 40_000)  # many tiles, and partial ones at the edges
    grey = PILImage.effect_noise(size, 80).convert("L")
    image = grey.convert(mode)
    expected = _as_before(image.copy(), 256)
    got = imaging.resample(image, expected.size, (0, 0, *size), PILImage.Resampling.BILINEAR, reducing_gap=2.0)
    assert got.mode == ("L" if mode in ("1", "L") else "RGB")
    assert ImageChops.difference(got.convert("RGB"), expected.convert("RGB")).getbbox() is None


def test_a_196_megapixel_1_bit_png_thumbnails_without_a_converted_full_size_copy(monkeypatch):
    data = one_bit_png(14000, 14000)
    assert len(data) < 100_000
    converted = []
    real_convert = PILImage.Image.convert

    def spy(self, mode=None, *args, **kwargs):
        converted.append(self.width * self.height)
        return real_convert(self, mode, *args, **kwargs)

    monkeypatch.setattr(PILImage.Image, "convert", spy)
    processed = imaging.process(data, 200_000_000, 256)
    assert (processed.info.width, processed.info.height) == (14000, 14000)
    assert max(converted) <= imaging.TILE_PIXELS
    thumb = PILImage.open(io.BytesIO(processed.thumbnail))
    assert thumb.size == (256, 256)
    assert thumb.getpixel((128, 128)) > 200 and thumb.getpixel((64, 64)) < 50  # white page, black block


def test_the_decode_budget_lets_small_decodes_run_side_by_side_and_a_large_one_alone():
    budget = imaging.DecodeBudget(100)
    order, inside, peak = [], [0], [0]
    lock = threading.Lock()

    def decode(name: str, pixels: int, seconds: float) -> None:
        with budget.hold(pixels):
            with lock:
                inside[0] += pixels
                peak[0] = max(peak[0], inside[0])
                order.append(name)
            time.sleep(seconds)
            with lock:
                inside[0] -= pixels

    plan = [("a", 40, 0.05), ("b", 40, 0.05), ("huge", 250, 0.02), ("c", 30, 0.01), ("d", 60, 0.01)]
    threads = []
    for name, pixels, seconds in plan:
        threads.append(threading.Thread(target=decode, args=(name, pixels, seconds)))
        threads[-1].start()
        time.sleep(0.005)  # arrive in this order
    for thread in threads:
        thread.join()
    # a and b share the budget; the huge one waits for both and runs alone; then the rest, in order.
    assert order == ["a", "b", "huge", "c", "d"]
    assert budget.peak == peak[0] == 250
    assert budget.in_use == 0


@pytest.mark.parametrize("threads, limit", [(4, 100), (8, 1000), (3, 7)])
def test_the_decode_budget_is_never_exceeded_by_files_that_fit_it(threads, limit):
    budget = imaging.DecodeBudget(limit)
    held, over = [0], []
    lock = threading.Lock()

    def work(seed: int) -> None:
        for i in range(40):
            pixels = 1 + (seed * 7919 + i * 104729) % limit
            with budget.hold(pixels):
                with lock:
                    held[0] += pixels
                    if held[0] > limit:
                        over.append(held[0])
                time.sleep(0.0005)
                with lock:
                    held[0] -= pixels

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert over == [] and budget.peak <= limit and budget.in_use == 0


@pytest.mark.parametrize("mode, fmt, size, held", [
    ("1", "PNG", (1000, 800), 800_000),  # Pillow keeps 1-bit pixels one byte each
    ("P", "GIF", (900, 700), 630_000),
    ("RGB", "PNG", (1000, 800), 3_200_000),  # RGB pixels are four bytes
    ("RGB", "JPEG", (4000, 3000), 500 * 375 * 4),  # decoded at 1/8 by draft(), for a 256 px thumbnail
    ("I;16", "PNG", (600, 500), 600_000),
])
def test_the_budget_counts_the_memory_each_decode_really_allocates(mode, fmt, size, held):
    out = io.BytesIO()
    PILImage.new(mode, size).save(out, fmt)
    budget = imaging.DecodeBudget(10**9)
    imaging.process(out.getvalue(), 10**8, 256, budget)
    assert budget.peak == held and budget.in_use == 0
