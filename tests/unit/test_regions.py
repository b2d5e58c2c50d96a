"""services/regions.py: crops match Pillow, EXIF orientation, every bad parameter, the storage cache."""

import io
from types import SimpleNamespace

import pytest
from PIL import Image as PILImage
from PIL import ImageChops, ImageOps, ImageStat, JpegImagePlugin

from core.errors import Invalid
from core.storage import LocalStorage, get_storage
from models import Image
from services import imaging, regions

BLOCK = 20


def pattern(size=(160, 120)) -> PILImage.Image:
    """Blocks of BLOCK px, each a different colour: crops are easy to check, and JPEG keeps them."""
    image = PILImage.new("RGB", size)
    for bx in range(0, size[0], BLOCK):
        for by in range(0, size[1], BLOCK):
            color = ((bx * 3) % 256, (by * 5) % 256, ((bx + by) * 7) % 256)
            image.paste(color, (bx, by, bx + BLOCK, by + BLOCK))
    return image


def encode(image: PILImage.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def store(storage, data: bytes):
    stored = storage.put_stream(io.BytesIO(data))
    decoded = ImageOps.exif_transpose(PILImage.open(io.BytesIO(data)))
    return SimpleNamespace(storage_key=stored.key, width=decoded.width, height=decoded.height)


def diff(a: PILImage.Image, b: PILImage.Image) -> float:
    """Mean absolute difference, against the reference encoded as the service encodes (JPEG is lossy)."""
    assert a.size == b.size
    b = PILImage.open(io.BytesIO(encode(b.convert("RGB"), "JPEG", quality=regions.QUALITY)))
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "store")


def test_crop_at_full_scale_matches_pillow(storage):
    original = pattern()
    image = store(storage, encode(original, "PNG"))
    got = PILImage.open(io.BytesIO(regions.region(image, 40, 20, 60, 70, 1, storage=storage)))
    assert got.format == "JPEG" and got.size == (60, 70)
    assert diff(got, original.crop((40, 20, 100, 90))) < 0.5
    # Block centres are exactly the pattern's colours (up to JPEG noise).
    for gx, gy in [(10, 10), (50, 30), (30, 50)]:
        expected = original.getpixel((40 + gx, 20 + gy))
        assert all(abs(a - b) <= 8 for a, b in zip(got.getpixel((gx, gy)), expected)), (gx, gy)


def test_downscaled_crop_matches_pillow_resize(storage):
    original = pattern()
    image = store(storage, encode(original, "PNG"))
    got = PILImage.open(io.BytesIO(regions.region(image, 20, 0, 120, 100, 0.5, storage=storage)))
    assert got.size == (60, 50)
    reference = original.crop((20, 0, 140, 100)).resize((60, 50), PILImage.Resampling.LANCZOS)
    assert diff(got, reference) < 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_crops_in_display_coordinates(storage, orientation):
    raw = pattern((160, 120))
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    data = encode(raw, "JPEG", quality=95, exif=exif.tobytes())
    image = store(storage, data)
    display = ImageOps.exif_transpose(PILImage.open(io.BytesIO(data)))
    assert (image.width, image.height) == ((120, 160) if orientation >= 5 else (160, 120))
    got = PILImage.open(io.BytesIO(regions.region(image, 20, 40, 60, 80, 1, storage=storage)))
    assert got.size == (60, 80)
    assert diff(got, display.crop((20, 40, 80, 120))) < 0.5
    half = PILImage.open(io.BytesIO(regions.region(image, 20, 40, 60, 80, 0.5, storage=storage)))
    assert half.size == (30, 40)
    # Decoded at 1/2 by libjpeg's DCT scaling, so close to (not equal to) Pillow's resize, and
    # clearly closer than a crop off by two pixels.
    right = diff(half, display.crop((20, 40, 80, 120)).resize((30, 40), PILImage.Resampling.LANCZOS))
    shifted = diff(half, display.crop((22, 42, 82, 122)).resize((30, 40), PILImage.Resampling.LANCZOS))
    assert right < 6 and right < shifted / 2, (right, shifted)


def test_jpeg_decodes_at_the_smallest_dct_scale_that_is_sharp_enough(storage, monkeypatch):
    original = pattern((1600, 1200))
    image = store(storage, encode(original, "JPEG", quality=90))
    sizes = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = real_draft(self, mode, size)
        sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    got = PILImage.open(io.BytesIO(regions.region(image, 400, 200, 800, 800, 0.125, storage=storage)))
    assert got.size == (100, 100)
    # Decoded at 1/8, and only down to the region's bottom (1000) plus the margin: 1600x1064 / 8.
    assert sizes == [(200, 133)]
    right = diff(got, original.crop((400, 200, 1200, 1000)).resize((100, 100), PILImage.Resampling.LANCZOS))
    shifted = diff(got, original.crop((416, 216, 1216, 1016)).resize((100, 100), PILImage.Resampling.LANCZOS))
    assert right < 10 and right < shifted / 2, (right, shifted)
    sizes.clear()
    regions.region(image, 400, 200, 800, 800, 0.3, storage=storage)
    assert sizes == [(800, 532)]  # 1/2 is the smallest decode with at least 0.3 of the resolution


def test_preview_fits_the_longest_side_and_is_cached(storage):
    image = store(storage, encode(pattern((4096, 1024)), "JPEG", quality=80))
    got = PILImage.open(io.BytesIO(regions.preview(image, storage=storage)))
    assert got.size == (2048, 512)
    assert storage.exists(regions.preview_key(image))
    small = store(storage, encode(pattern((160, 120)), "PNG"))
    assert PILImage.open(io.BytesIO(regions.preview(small, storage=storage))).size == (160, 120)  # never upscaled


def test_a_repeat_is_a_cache_hit_without_decoding(storage, monkeypatch):
    image = store(storage, encode(pattern(), "PNG"))
    first = regions.region(image, 0, 0, 100, 100, 0.5, storage=storage)
    key = regions.region_key(image, regions.validate(image, 0, 0, 100, 100, 0.5))
    assert key == f"regions/{image.storage_key}/0-0-100-100-50x50.jpg"
    assert storage.exists(key) and storage.read(key) == first

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(regions, "render", no_decoding)
    assert regions.region(image, "0", "0", "100", "100", "0.5", storage=storage) == first
    assert regions.ensure_region(image, 0, 0, 100, 100, 0.5, storage=storage) == key


BAD = [
    # (x, y, width, height, scale), words the message must contain
    (("a", 0, 10, 10, 1), "x must be a whole number"),
    ((None, 0, 10, 10, 1), "x is missing"),
    ((0, "1.5", 10, 10, 1), "y must be a whole number"),
    ((0, 0, float("nan"), 10, 1), "width must be a whole number"),
    ((0, 0, 10, float("inf"), 1), "height must be a whole number"),
    ((0, 0, True, 10, 1), "width must be a whole number"),
    ((0, 0, 10, 10, None), "scale is missing"),
    ((0, 0, 10, 10, "big"), "scale must be a number"),
    ((0, 0, 10, 10, "nan"), "scale must be greater than 0"),
    ((0, 0, 10, 10, "inf"), "scale must be greater than 0"),
    ((0, 0, 10, 10, 0), "scale must be greater than 0"),
    ((0, 0, 10, 10, -0.5), "scale must be greater than 0"),
    ((0, 0, 10, 10, 1.01), "at most 1"),
    ((0, 0, 0, 10, 1), "at least 1 pixel"),
    ((0, 0, 10, -3, 1), "at least 1 pixel"),
    ((-1, 0, 10, 10, 1), "must not be negative"),
    ((0, -1, 10, 10, 1), "must not be negative"),
    ((151, 0, 10, 10, 1), "not inside the 160x120 image"),
    ((0, 111, 10, 10, 1), "not inside"),
    ((0, 0, 161, 10, 1), "not inside"),
    ((200, 200, 1, 1, 1), "not inside"),
]


@pytest.mark.parametrize("params, words", BAD)
def test_every_bad_parameter_is_a_clear_invalid(storage, params, words):
    image = store(storage, encode(pattern(), "PNG"))
    with pytest.raises(Invalid) as caught:
        regions.region(image, *params, storage=storage)
    assert words in caught.value.message


def test_output_is_at_most_2048_pixels_a_side():
    image = SimpleNamespace(storage_key="0" * 64, width=12000, height=9000)
    assert regions.validate(image, 0, 0, 4096, 4096, 0.5).out_width == 2048
    with pytest.raises(Invalid, match="at most 2048x2048"):
        regions.validate(image, 0, 0, 4100, 100, 0.5)
    with pytest.raises(Invalid, match="at most 2048x2048"):
        regions.validate(image, 0, 0, 12000, 9000, 1)


def test_a_stored_file_that_cannot_be_decoded_gives_a_clear_error_not_a_crash(app_ctx):
    stored = get_storage().put_stream(io.BytesIO(b"\xff\xd8\xff\xe0 not really a jpeg"))
    image = Image(dataset_id=1, file_name="x.jpg", storage_key=stored.key, width=640, height=480, byte_size=stored.size, format="jpeg")

    with pytest.raises(Invalid, match="cannot be decoded"):
        regions.region(image, 0, 0, 64, 64, 1)


def photo(size=(480, 360), seed=3) -> PILImage.Image:
    """Colour noise over smooth gradients: chroma varies row to row, so subsampling edges would show."""
    import random

    rng = random.Random(seed)
    image = PILImage.linear_gradient("L").resize(size).convert("RGB")
    noise = PILImage.merge("RGB", [PILImage.effect_noise(size, 40 + 10 * band) for band in range(3)])
    image = PILImage.blend(image, noise, 0.5)
    for _ in range(30):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        image.paste(tuple(rng.randrange(256) for _ in range(3)), (x, y, x + rng.randrange(8, 60), y + rng.randrange(8, 60)))
    return image


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiles_match_a_crop_of_the_fully_decoded_image(storage, orientation, progressive):
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    data = encode(photo(), "JPEG", quality=92, exif=exif.tobytes(), progressive=progressive)
    image = store(storage, data)
    display = ImageOps.exif_transpose(PILImage.open(io.BytesIO(data)))
    w, h = display.size
    for x, y, width, height in [(0, 0, 96, 80), (w // 3, h // 2 - 40, 120, 80), (w - 100, h - 72, 100, 72), (5, h - 33, 37, 33)]:
        got = PILImage.open(io.BytesIO(regions.region(image, x, y, width, height, 1, storage=storage)))
        assert diff(got, display.crop((x, y, x + width, y + height))) < 1.5, (x, y)
    got = PILImage.open(io.BytesIO(regions.region(image, 16, 24, 160, 120, 0.5, storage=storage)))
    reference = display.crop((16, 24, 176, 144)).resize((80, 60), PILImage.Resampling.LANCZOS)
    shifted = display.crop((18, 26, 178, 146)).resize((80, 60), PILImage.Resampling.LANCZOS)
    assert diff(got, reference) < diff(got, shifted) / 1.5


@pytest.mark.parametrize("orientation, decoded_rows", [(1, 100 + regions.JPEG_ROW_MARGIN), (3, 1200), (6, 1200), (8, 100 + regions.JPEG_ROW_MARGIN)])
def test_a_full_resolution_tile_decodes_only_down_to_its_bottom_row(storage, monkeypatch, orientation, decoded_rows):
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    image = store(storage, encode(pattern((1600, 1200)), "JPEG", quality=90, exif=exif.tobytes()))
    sizes = []
    real_load = JpegImagePlugin.JpegImageFile.load

    def spy(self):
        sizes.append(self.size)
        return real_load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    # Display rows 0-99; stored rows 0-99 (1, and 8: display x is stored y), or the bottom ones (3, 6).
    regions.region(image, 0, 0, 100, 100, 1, storage=storage)
    assert sizes[-1] == (1600, decoded_rows)


def test_jpeg_top_rows_is_the_top_of_the_full_decode_and_declines_other_formats():
    from services import imaging

    for progressive in (False, True):
        data = encode(photo((300, 200)), "JPEG", quality=90, progressive=progressive)
        full = PILImage.open(io.BytesIO(data)).convert("RGB")
        top = PILImage.open(imaging.jpeg_top_rows(io.BytesIO(data), 77))
        assert top.size == (300, 77)
        assert ImageChops.difference(top.crop((0, 0, 300, 61)).convert("RGB"), full.crop((0, 0, 300, 61))).getbbox() is None
    assert imaging.jpeg_top_rows(io.BytesIO(encode(pattern(), "PNG")), 10) is None
    assert imaging.jpeg_top_rows(io.BytesIO(b"\xff\xd8\xff\xe0 not really a jpeg"), 10) is None


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "JPEG", "TIFF", "WEBP"])
@pytest.mark.parametrize("limit", [19_999, 1_000])
def test_regions_and_previews_of_an_image_over_the_limit_say_decompression_bomb(storage, fmt, limit):
    image = store(storage, encode(pattern((200, 100)), fmt))
    for make in (lambda: regions.preview(image, storage=storage, max_pixels=limit),
                 lambda: regions.region(image, 0, 0, 50, 50, 1, storage=storage, max_pixels=limit)):
        with pytest.raises(Invalid) as caught:
            make()
        assert caught.value.message == f"The stored image cannot be decoded: decompression bomb: 20,000 pixels, limit {limit:,}"


@pytest.mark.parametrize("mode", ["RGB", "P", "1", "RGBA"])
def test_regions_never_change_pillows_process_wide_limit_nor_trip_over_it(storage, monkeypatch, mode):
    """Pillow checks every crop against Image.MAX_IMAGE_PIXELS; a preview is a crop of the whole image."""
    original = pattern((1200, 900)).convert(mode)
    image = store(storage, encode(original, "PNG"))
    reference = original.convert("RGBA").convert("RGB").crop((100, 0, 1100, 900)).resize((500, 450), PILImage.Resampling.LANCZOS)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100_000)
    preview = regions.preview(image, storage=storage)
    got = regions.region(image, 100, 0, 1000, 900, 0.5, storage=storage)
    assert PILImage.MAX_IMAGE_PIXELS == 100_000
    monkeypatch.undo()
    preview, got = PILImage.open(io.BytesIO(preview)), PILImage.open(io.BytesIO(got))
    assert preview.size == (1200, 900) and got.size == (500, 450)
    assert diff(got, reference) < 3


@pytest.mark.parametrize("mode", ["P", "1", "LA"])
def test_a_preview_of_a_large_palette_or_1_bit_image_converts_a_tile_at_a_time(storage, monkeypatch, mode):
    original = pattern((6000, 3000)).convert(mode)
    image = store(storage, encode(original, "PNG"))
    converted = []
    real_convert = PILImage.Image.convert

    def spy(self, *args, **kwargs):
        converted.append(self.width * self.height)
        return real_convert(self, *args, **kwargs)

    monkeypatch.setattr(PILImage.Image, "convert", spy)
    got = PILImage.open(io.BytesIO(regions.preview(image, storage=storage)))
    assert got.size == (2048, 1024)
    assert max(converted) <= imaging.TILE_PIXELS < 6000 * 3000
    monkeypatch.setattr(PILImage.Image, "convert", real_convert)
    reference = original.convert("RGBA").convert("RGB").resize((2048, 1024), PILImage.Resampling.LANCZOS)
    assert diff(got, reference) < 3
