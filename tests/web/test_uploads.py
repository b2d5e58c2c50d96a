"""Uploading: the no-JS form, the JS batch endpoints, folders, bad files and request-size limits."""

import io
import struct
import zlib

import pytest

from core.extensions import db
from models import Folder, Image, ImportItem, ImportItemStatus, Job, JobStatus
from tests.factories import image_bytes, make_dataset
from tests.support import job_id_from, location_path, member, sign_in, upload


@pytest.fixture
def dataset(owner):
    return make_dataset(owner, name="Uploads")


def begin(client, dataset, **form) -> dict:
    response = client.post(f"/datasets/{dataset.id}/upload/batches", data=form)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def send(client, batch: dict, files: list[tuple[bytes, str]], paths: list[str] | None = None, **form) -> list[dict]:
    data = {"files": [(io.BytesIO(content), name) for content, name in files], **form}
    if paths is not None:
        data["paths"] = paths
    response = client.post(batch["files_url"], data=data, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["files"]


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares width x height pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def names(dataset_id: int) -> list[str]:
    return sorted(db.session.scalars(db.select(Image.file_name).where(Image.dataset_id == dataset_id)))


# ---- the no-JS form ------------------------------------------------------------------------


def test_upload_form_is_offered_to_people_who_may_import(client, dataset):
    body = client.get(f"/datasets/{dataset.id}/upload/").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in body and 'name="files"' in body and "<noscript>" in body


def test_no_js_form_upload_stores_the_files_and_the_job_imports_them(client, dataset, run_jobs):
    response = upload(client, dataset, [(image_bytes(seed=1), "a.jpg"), (image_bytes(seed=2, fmt="PNG"), "b.png")], split="train", folder="batch-1")
    assert response.status_code == 303
    assert location_path(response).startswith("/jobs/")
    job_id = job_id_from(response)
    assert db.session.get(Job, job_id).status == JobStatus.queued
    run_jobs()
    job = db.session.get(Job, job_id)
    assert job.status == JobStatus.finished and job.result["imported"] == 2
    images = db.session.scalars(db.select(Image).order_by(Image.file_name)).all()
    assert [(i.file_name, i.split.value, i.folder.path, i.format) for i in images] == [
        ("a.jpg", "train", "batch-1", "jpeg"), ("b.png", "train", "batch-1", "png"),
    ]
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'data-job-status="finished"' in page and "2 imported" in page


def test_no_js_form_without_files_says_choose_a_file(client, dataset):
    response = client.post(f"/datasets/{dataset.id}/upload/", data={"split": "train"}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose at least one file" in response.get_data(as_text=True)


def test_upload_with_an_unknown_split_is_refused(client, dataset):
    response = upload(client, dataset, [(image_bytes(seed=1), "a.jpg")], split="holdout")
    assert response.status_code == 422
    assert "Unknown split" in response.get_data(as_text=True)


# ---- the JS batch endpoints ----------------------------------------------------------------


def test_batch_upload_begins_takes_files_and_finishes_into_an_import_job(client, dataset, run_jobs):
    batch = begin(client, dataset, split="validation")
    assert batch["files_url"].endswith(f"/batches/{batch['upload_id']}/files")
    first = send(client, batch, [(image_bytes(seed=1), "one.jpg")])
    second = send(client, batch, [(image_bytes(seed=2), "two.jpg"), (image_bytes(seed=3), "three.jpg")])
    assert [f["stored"] for f in first + second] == [True, True, True]
    assert all(f["size"] > 0 and f["reason"] == "" for f in first + second)

    response = client.post(batch["finish_url"], headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'data-job-status="queued"' in body and 'hx-trigger="every 1s"' in body
    run_jobs()
    assert names(dataset.id) == ["one.jpg", "three.jpg", "two.jpg"]
    assert set(db.session.scalars(db.select(Image.split))) == {"validation"}


def test_a_finished_batch_takes_no_more_files(client, dataset):
    batch = begin(client, dataset)
    send(client, batch, [(image_bytes(seed=1), "one.jpg")])
    client.post(batch["finish_url"])
    response = client.post(batch["files_url"], data={"files": (io.BytesIO(image_bytes(seed=2)), "late.jpg")}, content_type="multipart/form-data")
    assert response.status_code == 409


def test_finishing_an_empty_batch_says_no_files_were_sent(client, dataset):
    batch = begin(client, dataset)
    response = client.post(batch["finish_url"])
    assert response.status_code == 422
    assert "No files were sent" in response.get_data(as_text=True)


def test_someone_elses_batch_is_not_found(client, new_client, dataset):
    batch = begin(client, dataset)
    other = new_client()
    sign_in(other, member(dataset, "manager"))
    response = other.post(batch["files_url"], data={"files": (io.BytesIO(image_bytes(seed=1)), "x.jpg")}, content_type="multipart/form-data")
    assert response.status_code == 404


def test_folder_paths_sent_with_files_become_folders_including_nested_ones(client, dataset, run_jobs):
    batch = begin(client, dataset)
    outcomes = send(
        client, batch,
        [(image_bytes(seed=1), "a.jpg"), (image_bytes(seed=2), "b.jpg"), (image_bytes(seed=3), "c.jpg"), (image_bytes(seed=4), "d.jpg")],
        paths=["trip/a.jpg", "trip/day2/beach/b.jpg", "trip\\day2\\c.jpg", ""],
    )
    assert all(o["stored"] for o in outcomes), outcomes
    client.post(batch["finish_url"])
    run_jobs()
    folder_of = dict(
        db.session.execute(db.select(Image.file_name, Folder.path).outerjoin(Folder, Image.folder_id == Folder.id)).all()
    )
    assert folder_of == {"a.jpg": "trip", "b.jpg": "trip/day2/beach", "c.jpg": "trip/day2", "d.jpg": None}
    folders = dict(db.session.execute(db.select(Folder.path, Folder.parent_id)).all())
    ids = dict(db.session.execute(db.select(Folder.path, Folder.id)).all())
    assert folders["trip"] is None and folders["trip/day2"] == ids["trip"] and folders["trip/day2/beach"] == ids["trip/day2"]
    body = client.get(f"/datasets/{dataset.id}/images/").get_data(as_text=True)
    for path in ("trip", "trip/day2", "trip/day2/beach"):
        assert f'<option value="{path}"' in body


def test_a_path_with_dotdot_is_rejected_with_a_reason_and_the_rest_are_kept(client, dataset, run_jobs):
    batch = begin(client, dataset)
    outcomes = send(client, batch, [(image_bytes(seed=1), "x.jpg"), (image_bytes(seed=2), "ok.jpg")], paths=["../../etc/x.jpg", "fine/ok.jpg"])
    assert outcomes[0]["stored"] is False and "'..'" in outcomes[0]["reason"]
    assert outcomes[1]["stored"] is True
    client.post(batch["finish_url"])
    run_jobs()
    assert names(dataset.id) == ["ok.jpg"]
    assert db.session.scalars(db.select(Folder.path)).all() == ["fine"]


def test_a_folder_field_with_dotdot_is_rejected(client, dataset):
    batch = begin(client, dataset)
    outcomes = send(client, batch, [(image_bytes(seed=1), "x.jpg")], folder="../outside")
    assert outcomes[0]["stored"] is False and "'..'" in outcomes[0]["reason"]


# ---- bad files -----------------------------------------------------------------------------


@pytest.fixture
def with_earlier_image(client, dataset, run_jobs):
    """One good image imported first: no bad file may take it away."""
    upload(client, dataset, [(image_bytes(seed=99), "earlier.jpg")])
    run_jobs()
    assert names(dataset.id) == ["earlier.jpg"]
    yield
    assert "earlier.jpg" in names(dataset.id), "an earlier image went missing"
    earlier = db.session.scalar(db.select(Image).where(Image.file_name == "earlier.jpg"))
    assert client.get(f"/datasets/{dataset.id}/images/{earlier.id}/file").data == image_bytes(seed=99)


BAD_AT_UPLOAD = [
    ("text file named .jpg", lambda: b"just some words, not an image\n" * 10, "notes.jpg", "not an image"),
    ("PNG declaring 30000x30000", lambda: png_header_only(30000, 30000), "bomb.png", "decompression bomb"),
    ("empty file", lambda: b"", "empty.jpg", "empty"),
    ("300-character name", lambda: image_bytes(seed=5), "n" * 296 + ".jpg", "longer than 255"),
]


@pytest.mark.parametrize("content,name,reason", [c[1:] for c in BAD_AT_UPLOAD], ids=[c[0] for c in BAD_AT_UPLOAD])
def test_bad_file_is_rejected_at_upload_with_a_reason(client, dataset, with_earlier_image, run_jobs, content, name, reason):
    batch = begin(client, dataset)
    (outcome,) = send(client, batch, [(content(), name)])
    assert outcome["stored"] is False
    assert reason in outcome["reason"]
    client.post(batch["finish_url"])
    run_jobs()
    items = db.session.scalars(db.select(ImportItem).where(ImportItem.upload_id == batch["upload_id"])).all()
    assert [i.status for i in items] == [ImportItemStatus.failed]
    assert names(dataset.id) == ["earlier.jpg"]


def test_pixel_bomb_reason_names_the_size_and_the_limit(client, dataset):
    batch = begin(client, dataset)
    (outcome,) = send(client, batch, [(png_header_only(30000, 30000), "bomb.png")])
    assert outcome["reason"] == "decompression bomb: 900,000,000 pixels, limit 200,000,000"


def test_truncated_jpeg_is_accepted_at_upload_and_failed_by_the_job_as_corrupt(client, dataset, with_earlier_image, run_jobs):
    whole = image_bytes(size=(400, 300), seed=7, quality=95)
    truncated = whole[: len(whole) // 2]
    response = upload(client, dataset, [(truncated, "broken.jpg"), (image_bytes(seed=8), "fine.jpg")])
    job_id = job_id_from(response)
    run_jobs()
    job = db.session.get(Job, job_id)
    assert job.status == JobStatus.finished, job.message
    assert job.result["failed"] == 1 and job.result["imported"] == 1
    assert job.errors[0]["item"] == "broken.jpg" and "corrupt" in job.errors[0]["reason"]
    assert names(dataset.id) == ["earlier.jpg", "fine.jpg"]
    body = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "broken.jpg" in body and "corrupt" in body


def test_unicode_file_name_is_stored_as_is(client, dataset, with_earlier_image, run_jobs):
    upload(client, dataset, [(image_bytes(seed=9), "臉書.jpg")])
    run_jobs()
    image = db.session.scalar(db.select(Image).where(Image.file_name == "臉書.jpg"))
    assert image is not None
    assert "臉書.jpg" in client.get(f"/datasets/{dataset.id}/images/{image.id}").get_data(as_text=True)
    assert "臉書.jpg" in client.get(f"/datasets/{dataset.id}/images/?search=臉").get_data(as_text=True)


def test_the_same_file_twice_gives_one_image_and_one_duplicate(client, dataset, with_earlier_image, run_jobs):
    content = image_bytes(seed=12)
    response = upload(client, dataset, [(content, "first.jpg"), (content, "second.jpg")])
    run_jobs()
    job = db.session.get(Job, job_id_from(response))
    assert job.result == {"imported": 1, "duplicates": 1, "failed": 0, "pending": 0}
    assert names(dataset.id) == ["earlier.jpg", "first.jpg"]
    assert job.errors[0]["item"] == "second.jpg" and "same content as first.jpg" in job.errors[0]["reason"]


def test_uploading_an_existing_image_again_later_is_a_duplicate(client, dataset, with_earlier_image, run_jobs):
    response = upload(client, dataset, [(image_bytes(seed=99), "again.jpg")])
    run_jobs()
    assert db.session.get(Job, job_id_from(response)).result["duplicates"] == 1
    assert names(dataset.id) == ["earlier.jpg"]


def test_a_request_over_the_size_limit_gets_413_with_a_clear_message(client, dataset, with_earlier_image, app_ctx):
    saved = app_ctx.config["MAX_CONTENT_LENGTH"]
    app_ctx.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    try:
        big = b"\xff\xd8" + b"\0" * (2 * 1024 * 1024)
        response = upload(client, dataset, [(big, "huge.jpg")])
        assert response.status_code == 413
        body = response.get_data(as_text=True)
        assert "larger than the limit of 1 MB" in body
        batch = begin(client, dataset)
        response = client.post(batch["files_url"], data={"files": (io.BytesIO(big), "huge.jpg")}, content_type="multipart/form-data", headers={"HX-Request": "true"})
        assert response.status_code == 413
        assert "<html" not in response.get_data(as_text=True)
    finally:
        app_ctx.config["MAX_CONTENT_LENGTH"] = saved
    assert db.session.scalar(db.select(db.func.count(ImportItem.id)).where(ImportItem.file_name == "huge.jpg")) == 0
