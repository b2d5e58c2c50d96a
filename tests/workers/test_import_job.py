"""The import job end to end: upload service → RQ (real worker, in process) → job row, image rows, files."""

import hashlib
import io
import subprocess
import sys

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from core.extensions import db
from core.storage import get_storage
from models import Dataset, Image, ImportItem, ImportItemStatus, Job, JobStatus
from tests.conftest import ROOT, worker_env
from tests.factories import image_bytes, make_dataset, make_user
from tests.unit.test_imaging import bomb_message, declaring, one_bit_png
from tests.workers.helpers import read_job, upload_files, with_png_text
from workers import imports, runtime
from workers.imports import import_upload


def _images(dataset_id: int) -> dict[str, Image]:
    return {i.file_name: i for i in db.session.scalars(select(Image).where(Image.dataset_id == dataset_id))}


def _thumbnail(image: Image) -> PILImage.Image:
    thumb = PILImage.open(io.BytesIO(get_storage().read(image.thumbnail_key)))
    thumb.load()
    return thumb


def _oriented(fmt: str = "JPEG", orientation: int = 6) -> bytes:
    """80x40 stored pixels, left half red and right half blue, with an EXIF orientation tag."""
    img = PILImage.new("RGB", (80, 40), (255, 0, 0))
    img.paste((0, 0, 255), (40, 0, 80, 40))
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def test_import_job_records_size_format_hash_and_thumbnail_of_every_image(app_ctx, run_jobs):
    user = make_user()
    dataset = make_dataset(user)
    files = {
        "small.jpg": image_bytes((64, 48), "JPEG", seed=1),
        "wide.jpg": image_bytes((600, 300), "JPEG", seed=2),
        "tall.png": image_bytes((300, 700), "PNG", seed=3),
    }
    upload, job = upload_files(dataset, user, list(files.items()))
    assert read_job(job.id)["status"] == "queued"

    run_jobs()

    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished, job.message
    assert job.done == job.total == 3
    assert job.percent == 100
    assert job.result == {"imported": 3, "duplicates": 0, "failed": 0, "pending": 0}
    assert job.errors == [] and job.error_count == 0
    assert job.started_at is not None and job.finished_at is not None and job.attempts == 1
    assert job.message == "3 imported, 0 duplicates, 0 failed"

    images = _images(dataset.id)
    assert set(images) == set(files)
    expected = {"small.jpg": (64, 48, "jpeg"), "wide.jpg": (600, 300, "jpeg"), "tall.png": (300, 700, "png")}
    for name, data in files.items():
        image = images[name]
        width, height, fmt = expected[name]
        assert (image.width, image.height, image.format) == (width, height, fmt), name
        assert image.byte_size == len(data)
        assert image.storage_key == hashlib.sha256(data).hexdigest()
        assert get_storage().read(image.storage_key) == data  # the original, byte for byte
        assert image.orientation == 1
        assert image.phash and len(image.phash) == 16
        assert image.created_by_id == user.id

        thumb = _thumbnail(image)
        assert thumb.format == "JPEG"
        assert max(thumb.size) <= 256
        if max(width, height) > 256:
            assert max(thumb.size) == 256
        else:
            assert thumb.size == (width, height)  # never enlarged
        assert abs(thumb.size[0] / thumb.size[1] - width / height) < 0.02, (name, thumb.size)

    dataset = db.session.get(Dataset, dataset.id)
    assert dataset.image_count == 3
    assert dataset.total_bytes == sum(len(d) for d in files.values())
    assert db.session.scalar(
        select(func.count()).where(ImportItem.upload_id == upload.id, ImportItem.status == ImportItemStatus.imported)
    ) == 3


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_exif_orientation_6_swaps_width_and_height_and_turns_the_thumbnail(app_ctx, run_jobs, fmt):
    user = make_user()
    dataset = make_dataset(user)
    _, job = upload_files(dataset, user, [("phone.img", _oriented(fmt, 6))])

    run_jobs()

    assert db.session.get(Job, job.id).status == JobStatus.finished
    image = _images(dataset.id)["phone.img"]
    assert (image.width, image.height, image.orientation) == (40, 80, 6)
    thumb = _thumbnail(image).convert("RGB")
    assert thumb.size == (40, 80)
    # Orientation 6 is "rotate 90° clockwise to display": the stored left (red) half ends up on top.
    top, bottom = thumb.getpixel((20, 15)), thumb.getpixel((20, 65))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_png_webp_bmp_tiff_and_gif_are_accepted(app_ctx, run_jobs):
    user = make_user()
    dataset = make_dataset(user)
    formats = {"PNG": "png", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff", "GIF": "gif", "JPEG": "jpeg"}
    files = [(f"img.{fmt.lower()}", image_bytes((64, 48), fmt, seed=10 + i)) for i, fmt in enumerate(formats)]
    _, job = upload_files(dataset, user, files)

    run_jobs()

    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished
    assert job.result["imported"] == len(formats), job.errors
    images = _images(dataset.id)
    for fmt, stored_as in formats.items():
        image = images[f"img.{fmt.lower()}"]
        assert (image.format, image.width, image.height) == (stored_as, 64, 48)
        assert _thumbnail(image).format == "JPEG"


def test_progress_is_committed_to_the_job_row_while_the_job_runs(app_ctx, run_jobs, monkeypatch):
    user = make_user()
    dataset = make_dataset(user)
    _, job = upload_files(dataset, user, [(f"p{i}.png", image_bytes((64, 48), "PNG", seed=100 + i)) for i in range(5)])
    monkeypatch.setitem(app_ctx.config, "LOUPE_PROGRESS_EVERY_MS", 0)  # commit on every call, so each step is visible
    monkeypatch.setattr(imports, "CHUNK", 2)  # several steps even if the job reports per chunk
    seen = []
    original = runtime.JobRun.progress

    def spy(self, done, total=None, message=None, force=False):
        original(self, done, total, message, force)
        seen.append(read_job(self.job.id))  # what another process (the page) reads right now

    monkeypatch.setattr(runtime.JobRun, "progress", spy)

    run_jobs()

    done = [s["done"] for s in seen]
    assert done[0] == 0 and done[-1] == 5
    assert done == sorted(done), done
    assert any(0 < d < 5 for d in done), done
    assert all(s["total"] == 5 and s["status"] == "running" for s in seen)
    assert any(s["message"] == f"Imported {s['done']} of 5" for s in seen if 0 < s["done"] < 5)
    assert read_job(job.id)["status"] == "finished"


def test_failed_items_are_recorded_and_never_stop_the_others(app_ctx, run_jobs):
    user = make_user()
    dataset = make_dataset(user)
    noisy = io.BytesIO()
    PILImage.effect_noise((200, 200), 60).convert("RGB").save(noisy, "PNG")
    truncated = noisy.getvalue()[: len(noisy.getvalue()) // 2]  # the header reads fine; decoding fails
    missing = image_bytes((64, 48), "PNG", seed=21)
    good = [image_bytes((64, 48), "JPEG", seed=s) for s in (22, 23, 24)]
    files = [
        ("truncated.png", truncated),
        ("ok-1.jpg", good[0]),
        ("notes.txt", b"this is not an image"),
        ("missing.png", missing),
        ("ok-2.jpg", good[1]),
        ("ok-1-again.jpg", good[0]),
        ("ok-3.jpg", good[2]),
    ]
    upload, job = upload_files(dataset, user, files)
    get_storage().delete(hashlib.sha256(missing).hexdigest())  # lost between upload and import

    run_jobs()

    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished, job.message
    assert job.result == {"imported": 3, "duplicates": 1, "failed": 3, "pending": 0}
    assert job.error_count == 4
    assert job.message == "3 imported, 1 duplicates, 3 failed"
    reasons = {e["item"]: e["reason"] for e in job.errors}
    assert set(reasons) == {"truncated.png", "notes.txt", "missing.png", "ok-1-again.jpg"}
    assert reasons["truncated.png"].startswith("corrupt image")
    assert "not an image" in reasons["notes.txt"]
    assert reasons["missing.png"] == "the uploaded file is missing from storage"
    assert "same content as ok-1.jpg" in reasons["ok-1-again.jpg"]
    assert set(_images(dataset.id)) == {"ok-1.jpg", "ok-2.jpg", "ok-3.jpg"}
    # A rejected file is not kept in storage.
    assert not get_storage().exists(hashlib.sha256(truncated).hexdigest())
    items = {i.file_name: i for i in db.session.scalars(select(ImportItem).where(ImportItem.upload_id == upload.id))}
    assert items["ok-1-again.jpg"].image_id == items["ok-1.jpg"].image_id
    assert db.session.get(Dataset, dataset.id).image_count == 3


def test_running_a_finished_import_again_changes_nothing(app_ctx, run_jobs):
    user = make_user()
    dataset = make_dataset(user)
    files = [(f"r{i}.jpg", image_bytes((64, 48), "JPEG", seed=300 + i)) for i in range(4)] + [("bad.png", b"\x89PNG nope")]
    upload, job = upload_files(dataset, user, files)
    run_jobs()
    first = db.session.get(Job, job.id)
    first_result = dict(first.result)
    first_rows = sorted((i.id, i.storage_key) for i in _images(dataset.id).values())
    assert first_result == {"imported": 4, "duplicates": 0, "failed": 1, "pending": 0}

    # What a person's "Run again" amounts to, minus the queue: the same function with the same ids.
    first.status, first.finished_at = JobStatus.queued, None
    db.session.commit()
    assert import_upload(job.id, upload.id) == first_result

    db.session.expire_all()
    again = db.session.get(Job, job.id)
    assert again.status == JobStatus.finished and again.attempts == 2
    assert again.done == again.total == 5
    assert sorted((i.id, i.storage_key) for i in _images(dataset.id).values()) == first_rows
    assert db.session.get(Dataset, dataset.id).image_count == 4
    statuses = db.session.scalars(select(ImportItem.status).where(ImportItem.upload_id == upload.id)).all()
    assert sorted(s.value for s in statuses) == ["failed", "imported", "imported", "imported", "imported"]


SMALL = [("JPEG", "jpg"), ("PNG", "png"), ("GIF", "gif"), ("TIFF", "tif"), ("WEBP", "webp"), ("BMP", "bmp")]


@pytest.mark.parametrize("threads, limit", [(4, 50_000_000), (3, 120_000_000), (1, 50_000_000)])
def test_every_image_over_the_pixel_limit_fails_alone_and_the_job_imports_the_rest(app_ctx, run_jobs, monkeypatch, threads, limit):
    monkeypatch.setitem(app_ctx.config, "LOUPE_IMPORT_THREADS", threads)
    user = make_user()
    dataset = make_dataset(user)
    # Over the limit: a real 1-bit page and files whose headers declare huge sizes, every format.
    bombs = {
        "page.png": (one_bit_png(12000, 11000), 12000 * 11000),
        "declares.png": (declaring("PNG", 20000, 20000), 20000 * 20000),
        "screen.gif": (declaring("GIF", 60000, 50000), 60000 * 50000),
        "scan.tif": (declaring("TIFF", 30000, 30000), 30000 * 30000),
        "photo.jpg": (declaring("JPEG", 60000, 40000), 60000 * 40000),
        "wide.webp": (declaring("WEBP", 13000, 13000), 13000 * 13000),
        "old.bmp": (declaring("BMP", 15000, 9000), 15000 * 9000),
    }
    small = [(f"ok-{i}.{ext}", image_bytes((64, 48), fmt, seed=500 + i)) for i, (fmt, ext) in enumerate(SMALL)]
    files = [(name, data) for name, (data, _) in bombs.items()]
    files = [file for pair in zip(files, small) for file in pair] + files[len(small):]  # bombs between small files
    # The limit was higher when they were uploaded (another instance, or a changed setting).
    monkeypatch.setitem(app_ctx.config, "LOUPE_MAX_IMAGE_PIXELS", 10**10)
    upload, job = upload_files(dataset, user, files)
    monkeypatch.setitem(app_ctx.config, "LOUPE_MAX_IMAGE_PIXELS", limit)

    run_jobs()

    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished, job.message
    assert job.result == {"imported": len(small), "duplicates": 0, "failed": len(bombs), "pending": 0}
    assert {e["item"]: e["reason"] for e in job.errors} == {
        name: bomb_message(pixels, limit) for name, (_, pixels) in bombs.items()
    }
    assert set(_images(dataset.id)) == {name for name, _ in small}
    assert db.session.get(Dataset, dataset.id).image_count == len(small)


# What a 196 MP 1-bit page cost before: decoded (196 MB), then converted to RGBA (784 MB) and to RGB
# (784 MB) before the thumbnail, on every import thread at once. Measured with this test: 1,762 MB
# for one page on one thread, and two pages on four threads failed the job (Pillow's limit, changed
# by the other thread). Now 294 MB: the 1-bit pixels, tiles converted one at a time, a page alone.
PEAK_MB = 600


@pytest.mark.slow
def test_a_real_worker_imports_196_megapixel_1_bit_pages_side_by_side_in_bounded_memory(app_ctx):
    user = make_user()
    dataset = make_dataset(user)
    page = one_bit_png(14000, 14000)
    assert len(page) < 100_000
    # Two of them (over Pillow's own limit of 179 MP, under Loupe's 200 MP) raced each other before.
    files = [("page-1.png", page), ("page-2.png", with_png_text(page, "2"))]
    files += [(f"ok-{i}.{ext}", image_bytes((640, 480), fmt, seed=600 + i)) for i, (fmt, ext) in enumerate(SMALL)]
    _, job = upload_files(dataset, user, files)
    # A real `python -m workers --burst` (and its work horse), under a parent that reports their peak.
    measure = (
        "import resource, subprocess, sys; "
        "subprocess.run([sys.executable, '-m', 'workers', '--burst', 'imports'], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    env = {**worker_env(app_ctx), "LOUPE_IMPORT_THREADS": "4"}
    run = subprocess.run([sys.executable, "-c", measure], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    peak_mb = int(run.stdout.split()[-1]) / 1024

    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished, job.message
    assert job.result == {"imported": len(files), "duplicates": 0, "failed": 0, "pending": 0}, job.errors
    for name in ("page-1.png", "page-2.png"):
        image = _images(dataset.id)[name]
        assert (image.width, image.height) == (14000, 14000)
        assert _thumbnail(image).size == (256, 256)
    assert peak_mb < PEAK_MB, f"the worker peaked at {peak_mb:.0f} MB"
